using System.Text.Json;
using Kmem.Scenarios;
using Kmem.Zoo;
using Xunit;

namespace Kmem.Properties;

/// <summary>
/// `kmem-verify` in-process: exit codes (0 held, 1 a violation or finding, 2 bad input), what each
/// command prints, --json objects, bad input with file:line:column, and the regression corpus naming.
/// </summary>
public sealed class CliTests() : CliTestBase("kmem-cli-tests-")
{
    private static string Regression(string name) => Path.Combine(Corpus.Root, "corpus", "regressions", name);
    private static string Example(string name) => Path.Combine(Corpus.Root, "corpus", "examples", name);
    private const string NoUpper = "no-upper-coalesce-coalescing-free_pages.kmem";

    private string Write(string name, string text)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    // ---------------------------------------------------------------- replay

    [Fact]
    public void Replay_of_a_regression_exits_1_with_the_step_line_invariant_and_why()
    {
        var (code, o, _) = Run("replay", Regression(NoUpper), "--target", "buggy:no-upper-coalesce");
        Assert.Equal(1, code);
        Assert.Contains($"VIOLATION [coalescing] at step 2, {Regression(NoUpper)}:9: free_pages", o);
        Assert.Contains("Why:", o);
        Assert.Contains("The free that should have merged them: step 2 (line 9)", o);
    }

    [Fact]
    public void Replay_on_the_reference_exits_0()
    {
        var (code, o, e) = Run("replay", Regression(NoUpper));
        Assert.Equal(0, code);
        Assert.Contains("ok: ", o);
        Assert.Equal("", e);
        var (code2, _, _) = Run("replay", Example("coalescing-after-frees.kmem"));
        Assert.Equal(0, code2);
    }

    [Fact]
    public void Replay_trace_prints_each_step_with_what_changed()
    {
        var (code, o, _) = Run("replay", Regression(NoUpper), "--target", "buggy:no-upper-coalesce", "--trace");
        Assert.Equal(1, code);
        Assert.Matches(@"step +1 line +8 +p0 = alloc_pages 0 +=> Ok @0x100000", o);
        Assert.Contains("- split the order-8 free block 0x100000–0x1fffff", o);
        Assert.Contains("- put on the free lists: an order-0 block 0x100000 (frame 256) in DMA", o);
        Assert.Contains(">>> the 'coalescing' check fails here", o);
        // On the reference the same free merges.
        var (_, good, _) = Run("replay", Regression(NoUpper), "--trace");
        Assert.Contains("into an order-8 free block 0x100000–0x1fffff", good);
    }

    [Fact]
    public void Replay_map_prints_the_frames_around_the_failure_in_plain_text_when_not_on_a_terminal()
    {
        var (code, o, _) = Run("replay", Regression(NoUpper), "--target", "buggy:no-upper-coalesce", "--map");
        Assert.Equal(1, code);
        Assert.Contains("001-2---3-------4", o);
        Assert.Contains("marked (^): the frames the failure is about: 0x100000–0x101fff (frames 256–257)", o);
        Assert.DoesNotContain("\u001b[", o);
        var (_, coloured, _) = Run("replay", Regression(NoUpper), "--target", "buggy:no-upper-coalesce", "--map", "--color", "always");
        Assert.Contains("\u001b[", coloured);
    }

    [Fact]
    public void Replay_html_writes_a_self_contained_page()
    {
        string html = Path.Combine(dir, "sub", "report.html");
        var (code, o, _) = Run("replay", Regression(NoUpper), "--target", "buggy:no-upper-coalesce", "--html", html);
        Assert.Equal(1, code);
        Assert.Contains($"report written to {html}", o);
        string page = File.ReadAllText(html);
        Assert.Contains("<svg", page);
        Assert.Contains("data-failing=\"true\"", page);
        Assert.DoesNotMatch("(?i)https?:", page);
    }

    [Fact]
    public void Replay_json_is_one_documented_object()
    {
        var (code, o, e) = Run("replay", Regression(NoUpper), "--target", "buggy:no-upper-coalesce", "--json", "--trace");
        Assert.Equal(1, code);
        Assert.Equal("", e);
        var lines = o.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var j = JsonDocument.Parse(Assert.Single(lines)).RootElement;
        Assert.Equal("kmem-verify/verdict", j.GetProperty("schema").GetString());
        Assert.Equal(1, j.GetProperty("schemaVersion").GetInt32());
        Assert.Equal("replay", j.GetProperty("command").GetString());
        Assert.False(j.GetProperty("ok").GetBoolean());
        Assert.Equal("coalescing/free_pages", j.GetProperty("signature").GetString());
        Assert.Equal("coalescing", j.GetProperty("invariant").GetString());
        Assert.Equal("free_pages", j.GetProperty("operation").GetString());
        Assert.Equal(2, j.GetProperty("step").GetInt32());
        Assert.Equal(9, j.GetProperty("line").GetInt32());
        Assert.Contains("left unmerged", j.GetProperty("message").GetString());
        Assert.Equal("buggy:no-upper-coalesce", j.GetProperty("target").GetString());
        Assert.Equal("linux-6.8-x86_64", j.GetProperty("profile").GetString());
        Assert.Equal(Kmem.Cli.Cli.ToolVersion, j.GetProperty("toolVersion").GetString());
        Assert.Equal(JsonValueKind.Null, j.GetProperty("seed").ValueKind);
        Assert.Contains("free_pages p0", j.GetProperty("scenario").GetString());
        Assert.True(j.GetProperty("explanation").GetArrayLength() >= 2);
        var trace = j.GetProperty("trace").EnumerateArray().ToList();
        Assert.True(trace[^1].GetProperty("failing").GetBoolean());
        Assert.Equal("free_pages p0", trace[^1].GetProperty("text").GetString());

        var (okCode, okOut, _) = Run("replay", Regression(NoUpper), "--json");
        Assert.Equal(0, okCode);
        var ok = JsonDocument.Parse(okOut).RootElement;
        Assert.True(ok.GetProperty("ok").GetBoolean());
        Assert.Equal("ok", ok.GetProperty("signature").GetString());
        Assert.Equal(JsonValueKind.Null, ok.GetProperty("step").ValueKind);
    }

    // ---------------------------------------------------------------- bad input

    [Fact]
    public void A_malformed_file_exits_2_with_file_line_and_column()
    {
        string bad = Write("bad.kmem", "profile linux-6.8-x86_64\nram 16M\np0 = alloc_pages zero\n");
        foreach (var cmd in new[] { "replay", "shrink" })
        {
            var (code, o, e) = Run(cmd, bad);
            Assert.Equal(2, code);
            Assert.Matches($"^{System.Text.RegularExpressions.Regex.Escape(bad)}:3:\\d+: ", e);
            Assert.DoesNotContain("   at ", e + o); // no stack trace
        }
    }

    [Fact]
    public void A_file_from_a_newer_format_gets_a_clear_message_and_exit_2()
    {
        string newer = Write("newer.kmem", "kmem 2\nprofile linux-6.8-x86_64\nfrobnicate 3 wibble\n");
        var (code, _, e) = Run("replay", newer);
        Assert.Equal(2, code);
        Assert.Contains($"{newer}:1:6: format version 2 is newer than this tool understands", e);
        var (scode, _, se) = Run("shrink", newer);
        Assert.Equal(2, scode);
        Assert.Contains("newer than this tool understands", se);
    }

    [Fact]
    public void Unknown_targets_files_options_and_values_exit_2()
    {
        Assert.Equal(2, Run("replay", Regression(NoUpper), "--target", "buggy:nope").Code);
        Assert.Equal(2, Run("replay", Path.Combine(dir, "missing.kmem")).Code);
        Assert.Equal(2, Run("replay", Regression(NoUpper), "--frobnicate").Code);
        Assert.Equal(2, Run("replay", Regression(NoUpper), "--color", "sometimes").Code);
        Assert.Equal(2, Run("check", "--ram", "1P").Code);
        Assert.Equal(2, Run("check", "--profile", "linux-1.0").Code);
        Assert.Equal(2, Run("check", "--cases", "0").Code);
        Assert.Equal(2, Run("shrink", Regression(NoUpper), "--format", "xml").Code);
        Assert.Equal(2, Run("nonsense").Code);
    }

    // ---------------------------------------------------------------- check

    [Fact]
    public void Check_finds_shrinks_and_writes_a_finding_under_a_stable_name_once()
    {
        string outDir = Path.Combine(dir, "findings");
        var (code, o, _) = Run("check", "--target", "buggy:no-upper-coalesce", "--seed", "2", "--out", outDir, "--quiet");
        Assert.Equal(1, code);
        var file = Assert.Single(Directory.GetFiles(outDir));
        Assert.Contains($"written to {file}", o);
        Assert.Contains("Why:", o);
        Assert.DoesNotContain("...", o); // --quiet: no progress
        var s = ScenarioParser.Parse(File.ReadAllText(file), file);
        string? signature = Corpus.HeaderValue(s, "signature");
        Assert.Equal("buggy:no-upper-coalesce", Corpus.HeaderValue(s, "target"));
        // The stable name: target without "buggy:", then the signature.
        Assert.Equal($"no-upper-coalesce-{signature!.Replace('/', '-')}.kmem", Path.GetFileName(file));
        var minimum = TargetRegistry.Get("buggy:no-upper-coalesce")!.Minimal.Single(m => m.Signature == signature);
        Assert.Equal(minimum.Ops, s.Ops.Count);

        // The same run again finds the same counterexample: the same file, no duplicate.
        var (code2, o2, _) = Run("check", "--target", "buggy:no-upper-coalesce", "--seed", "2", "--out", outDir, "--quiet");
        Assert.Equal(1, code2);
        Assert.Contains($"written to {file}", o2);
        Assert.Single(Directory.GetFiles(outDir));
    }

    [Fact]
    public void A_different_counterexample_with_the_same_signature_never_overwrites()
    {
        string outDir = Path.Combine(dir, "corpus");
        string a = "# target: buggy:x\nprofile linux-6.8-x86_64\nram 16M\np0 = alloc_pages 0\nfree_pages p0\n";
        string b = "# target: buggy:x\nprofile linux-6.8-x86_64\nram 32M\np0 = alloc_pages 0\nfree_pages p0\n";
        string pa = Kmem.Cli.Cli.WriteFinding(outDir, "coalescing/free_pages", "buggy:x", a);
        string pb = Kmem.Cli.Cli.WriteFinding(outDir, "coalescing/free_pages", "buggy:x", b);
        string pa2 = Kmem.Cli.Cli.WriteFinding(outDir, "coalescing/free_pages", "buggy:x", "# found again, other seed\n" + a);
        Assert.Equal(Path.Combine(outDir, "x-coalescing-free_pages.kmem"), pa);
        Assert.Equal(Path.Combine(outDir, "x-coalescing-free_pages-2.kmem"), pb);
        Assert.Equal(pa, pa2);
        Assert.Equal(a, File.ReadAllText(pa));
        Assert.Equal(b, File.ReadAllText(pb));
        Assert.Equal(2, Directory.GetFiles(outDir).Length);
    }

    [Fact]
    public void Check_json_reports_the_run_and_the_shrunk_verdict()
    {
        var (code, o, _) = Run("check", "--target", "buggy:max-order-off-by-one", "--seed", "1", "--out", Path.Combine(dir, "f"), "--json", "--quiet");
        Assert.Equal(1, code);
        var j = JsonDocument.Parse(o.Trim()).RootElement;
        Assert.Equal("check", j.GetProperty("command").GetString());
        Assert.Equal("1", j.GetProperty("seed").GetString());
        Assert.Equal("linux-4.19-x86_64", j.GetProperty("profile").GetString());
        Assert.Equal("free-blocks/mem_init", j.GetProperty("signature").GetString());
        Assert.True(File.Exists(j.GetProperty("file").GetString()));
        var c = j.GetProperty("check");
        Assert.Equal(1, c.GetProperty("failures").GetInt32());
        Assert.Equal(0, c.GetProperty("shrunk").GetProperty("ops").GetInt32());

        var (okCode, okOut, _) = Run("check", "--cases", "20", "--seed", "3", "--json", "--quiet");
        Assert.Equal(0, okCode);
        var ok = JsonDocument.Parse(okOut.Trim()).RootElement;
        Assert.True(ok.GetProperty("ok").GetBoolean());
        Assert.Equal(20, ok.GetProperty("check").GetProperty("cases").GetInt32());
    }

    [Fact]
    public void Check_progress_is_plain_text_when_not_on_a_terminal()
    {
        var (code, o, e) = Run("check", "--cases", "30", "--seed", "4");
        Assert.Equal(0, code);
        Assert.Contains("passed: 30 cases", o);
        Assert.DoesNotContain("\u001b[", o + e);
    }

    // ---------------------------------------------------------------- shrink

    [Fact]
    public void Shrink_a_long_kmem_to_the_minimum_and_report_sizes_and_time()
    {
        var info = TargetRegistry.Get("buggy:no-upper-coalesce")!;
        var (s, v) = LongScenarios.Make(info, 400, 2, late: true);
        string text = ScenarioPrinter.Print(s with { Header = s.Header with { Comments = ["target: buggy:no-upper-coalesce"] } });
        string input = Write("long.kmem", text);
        var (code, o, e) = Run("shrink", input); // the target comes from the file's header
        Assert.True(code == 1, e);
        string outPath = Path.Combine(dir, "long.min.kmem");
        var minimum = info.Minimal.Single(m => m.Signature == v.Signature);
        Assert.Contains($"signature: {v.Signature}", o);
        Assert.Matches($@"before: +{s.Ops.Count} operations, {s.Header.Boot.Count} boot parameter", o);
        Assert.Matches($@"after: +{minimum.Ops} operations?, 0 boot parameters", o);
        Assert.Matches(@"time: +\d+\.\d{3} s \(\d+ runs", o);
        Assert.Contains($"written to {outPath}", o);
        // It replays: the same failure through the CLI.
        var (rc, ro, _) = Run("replay", outPath, "--target", "buggy:no-upper-coalesce");
        Assert.Equal(1, rc);
        Assert.Contains($"VIOLATION [{v.Invariant}]", ro);
        var min = ScenarioParser.Parse(File.ReadAllText(outPath), outPath);
        Assert.Equal(minimum.Ops, min.Ops.Count);
        Assert.Equal(v.Signature, Corpus.HeaderValue(min, "signature"));
        Assert.Equal("buggy:no-upper-coalesce", Corpus.HeaderValue(min, "target"));
    }

    [Fact]
    public void Shrink_reads_a_raw_fuzzer_input()
    {
        // The binary encoding of a failing scenario, in a file with no extension (as AFL names them).
        var info = TargetRegistry.Get("buggy:no-upper-coalesce")!;
        var (s, _) = LongScenarios.Make(info, 200, 3, late: false);
        byte[] bytes = BinaryCodec.Encode(s);
        var decoded = BinaryCodec.Decode(bytes);
        var v = Corpus.Run(decoded, info.Name);
        Assert.False(v.Ok);
        var minimum = info.Minimal.Single(m => m.Signature == v.Signature);
        string input = Path.Combine(dir, "id-000000");
        File.WriteAllBytes(input, bytes);
        string outPath = Path.Combine(dir, "crash.kmem");
        var (code, o, e) = Run("shrink", input, "--target", "buggy:no-upper-coalesce", "--out", outPath, "--json");
        Assert.True(code == 1, e + o);
        var j = JsonDocument.Parse(o.Trim()).RootElement;
        Assert.Equal("shrink", j.GetProperty("command").GetString());
        var sh = j.GetProperty("shrink");
        Assert.StartsWith("binary fuzzer input", sh.GetProperty("input").GetString());
        Assert.Equal(minimum.Ops, sh.GetProperty("after").GetProperty("ops").GetInt32());
        Assert.Equal(decoded.Ops.Count, sh.GetProperty("before").GetProperty("ops").GetInt32());
        // Work, not time (no wall clock in tests): the same budget ShrinkTests holds the shrinker to.
        Assert.InRange(sh.GetProperty("runs").GetInt32(), 1, 200);
        Assert.Equal(outPath, sh.GetProperty("written").GetString());
        Assert.Equal(v.Signature, j.GetProperty("signature").GetString());
        Assert.True(File.Exists(outPath));
    }

    [Fact]
    public void Shrink_of_an_input_that_holds_exits_0_and_writes_nothing()
    {
        string input = Write("fine.kmem", "profile linux-6.8-x86_64\nram 16M\np0 = alloc_pages 0\nfree_pages p0\n");
        var (code, o, _) = Run("shrink", input);
        Assert.Equal(0, code);
        Assert.Contains("nothing to shrink", o);
        Assert.False(File.Exists(Path.Combine(dir, "fine.min.kmem")));
    }

    // ---------------------------------------------------------------- listings

    [Fact]
    public void Profiles_and_targets_list_everything()
    {
        var (pc, po, _) = Run("profiles");
        Assert.Equal(0, pc);
        foreach (var p in Profiles.All) Assert.Contains(p.Name, po);
        var (tc, to, _) = Run("targets");
        Assert.Equal(0, tc);
        foreach (var t in TargetRegistry.All) Assert.Contains(t.Name, to);
    }
}
