using System.Text.Json;
using Kmem.Cli.Commands;
using Kmem.Engines;
using Kmem.Engines.Fuzzing;
using Kmem.Zoo;
using Xunit;

namespace Kmem.Properties;

/// <summary>
/// `kmem-verify bench`: usage checks and exit codes, the fuzz engine's set-up checks, reading a
/// campaign's FINDING lines, and the table and JSON from made-up results. No campaign runs here:
/// timed campaigns are benchmarks, not tests.
/// </summary>
public sealed class BenchTests() : CliTestBase("kmem-bench-tests-")
{
    // ---------------------------------------------------------------- usage

    [Theory]
    [InlineData("expected check or fuzz", "bench", "--engine", "afl")]
    [InlineData("--runs must be at least 1", "bench", "--engine", "fuzz", "--runs", "0")]
    [InlineData("--budget soon: expected", "bench", "--engine", "fuzz", "--budget", "soon")]
    [InlineData("unknown known-buggy target 'buggy:nope'", "bench", "--engine", "fuzz", "--target", "buggy:nope")]
    [InlineData("are for --engine fuzz", "bench", "--budget", "30s")]
    [InlineData("are for --engine fuzz", "bench", "--engine", "check", "--build", "/tmp")]
    [InlineData("are for --engine fuzz", "bench", "--seeds", "/tmp")]
    public void Bad_usage_exits_2_with_a_message_and_no_output(string message, params string[] args)
    {
        var (code, stdout, stderr) = Run(args);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains(message, stderr);
    }

    [Fact]
    public void A_missing_build_is_a_set_up_error_before_any_campaign()
    {
        var (code, stdout, stderr) = Run("bench", "--engine", "fuzz", "--target", "buggy:no-upper-coalesce", "--build", Path.Combine(dir, "none"), "--json");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        // Which check fails first depends on the machine: afl-fuzz, then the build.
        Assert.True(stderr.Contains("afl-fuzz not found", StringComparison.Ordinal) ||
                    stderr.Contains($"no instrumented harness in {Path.Combine(dir, "none")}: run fuzz/setup.sh", StringComparison.Ordinal), stderr);
    }

    [Fact]
    public void Defaults_depend_on_the_engine()
    {
        Assert.Null(BenchCommand.Validate("fuzz", null, null, null, null, null, false, out var f));
        Assert.Equal((1, TimeSpan.FromSeconds(60), KnownBugs.All.Count), (f.Runs, f.Budget, f.Targets.Count));
        Assert.Null(BenchCommand.Validate("check", null, null, null, null, "buggy:hole-buddy", true, out var c));
        Assert.Equal((10, 1, "buggy:hole-buddy"), (c.Runs, c.Targets.Count, c.Targets[0].Name));
        Assert.Null(BenchCommand.Validate("fuzz", 3, "2m", "/x", "/y", null, false, out var g));
        Assert.Equal((3, TimeSpan.FromMinutes(2), "/x", "/y"), (g.Runs, g.Budget, g.Build, g.Out));
    }

    [Fact]
    public void Set_up_checks_say_what_kmem_verify_fuzz_says()
    {
        Assert.Contains("apt-get install -y afl++", FuzzBench.CheckSetup(null, dir, "/usr/bin/dotnet", null));
        Assert.Equal($"no instrumented harness in {dir}: run fuzz/setup.sh (it publishes and instruments it)",
            FuzzBench.CheckSetup("/usr/bin/afl-fuzz", dir, "/usr/bin/dotnet", null));
        File.WriteAllText(Path.Combine(dir, "Kmem.Fuzz.dll"), "");
        Assert.Contains("no instrumented harness", FuzzBench.CheckSetup("/usr/bin/afl-fuzz", dir, "/usr/bin/dotnet", null));
        File.WriteAllText(Path.Combine(dir, ".instrumented"), "");
        Assert.Contains("dotnet not found", FuzzBench.CheckSetup("/usr/bin/afl-fuzz", dir, null, null));
        Assert.Contains("no such folder", FuzzBench.CheckSetup("/usr/bin/afl-fuzz", dir, "/usr/bin/dotnet", Path.Combine(dir, "seeds")));
        Assert.Null(FuzzBench.CheckSetup("/usr/bin/afl-fuzz", dir, "/usr/bin/dotnet", dir));
    }

    [Fact]
    public void The_seeded_wrapper_execs_afl_fuzz_with_s_before_the_campaigns_arguments()
    {
        string path = FuzzBench.SeededAflFuzz(dir, "/opt/it's/afl-fuzz", 3);
        Assert.Equal("#!/bin/sh\nexec '/opt/it'\\''s/afl-fuzz' -s 3 \"$@\"\n", File.ReadAllText(path));
        if (!OperatingSystem.IsWindows()) Assert.True(File.GetUnixFileMode(path).HasFlag(UnixFileMode.UserExecute));
    }

    // ---------------------------------------------------------------- the campaign's FINDING lines

    [Fact]
    public void Finding_lines_are_read_with_their_reference_verdict_and_file()
    {
        var log = new FindingLog();
        var w = log.Writer;
        // The lines come from the campaign's own writer, so a change to its wording breaks this test.
        var harness = new HarnessOptions { Target = "buggy:x" };
        w.WriteLine("kmem-verify fuzz: 1 job(s), harness scenario --target buggy:x, -t 5000 ms, for 30.0s");
        w.Write(Campaign.FindingText(new TriageResult(TriageKind.New, "crash/OverflowException", "crash/OverflowException: ...",
            "/o/findings/x-crash-OverflowException.kmem", 5, 0, 48, TimeSpan.FromSeconds(0.3)) { OnReference = "crash/OverflowException" },
            TimeSpan.FromSeconds(9.4), null, "main", harness));
        w.Write("[20.0s] execs 1,234 (no AFL++ stats yet; main 40/s) corpus 50 crashes 1 findings 1 hangs 0 last new path: none yet\n");
        w.Write(Campaign.FindingText(new TriageResult(TriageKind.New, "coalescing/kfree", "coalescing: ...",
            "/o/findings/x-coalescing-kfree.kmem", 7, 2, 59, TimeSpan.FromSeconds(1.25)) { OnReference = "ok" },
            TimeSpan.FromSeconds(62), 3000, "main", harness));
        Assert.Equal(2, log.Findings.Count);
        Assert.Equal(new FuzzFinding("crash/OverflowException", 9.4, null, "seed", 5, 0, 48, 0.3, "crash/OverflowException", "/o/findings/x-crash-OverflowException.kmem"), log.Findings[0]);
        // The line rounds the shrink time to a tenth of a second.
        Assert.Equal(new FuzzFinding("coalescing/kfree", 62, 3.0, "afl", 7, 2, 59, 1.3, "ok", "/o/findings/x-coalescing-kfree.kmem"), log.Findings[1]);
        Assert.False(log.Findings[0].HoldsOnReference);
        Assert.True(log.Findings[1].HoldsOnReference);
    }

    [Theory]
    [InlineData("0.0s", 0)]
    [InlineData("12.9s", 12.9)]
    [InlineData("1m02s", 62)]
    [InlineData("1h00m05s", 3605)]
    public void Campaign_times_read_back(string text, double seconds) => Assert.Equal(seconds, FindingLog.ParseSpan(text), 6);

    // ---------------------------------------------------------------- rows, table, JSON

    private static FuzzFinding Own(string sig, double at, double? afl, int ops) => new(sig, at, afl, afl is null ? "seed" : "afl", 5, ops, 60, 0.5, "ok", null);

    private static FuzzRun FakeRun(string target, int run, FuzzFinding? first, int? min, string? error = null, double budget = 30) =>
        new(target, run, run, budget, budget, first, [], min, 1000, 40, error);

    [Fact]
    public void A_run_counts_when_its_own_finding_is_on_disk_within_the_budget()
    {
        Assert.True(FakeRun("buggy:a", 1, Own("s/x", 30, 2, 2), 2).Found);
        Assert.True(FakeRun("buggy:a", 1, Own("s/x", 30, 2, 2), 2).AtMinimum);
        Assert.False(FakeRun("buggy:a", 1, Own("s/x", 30.5, 2, 2), 2).Found);
        Assert.False(FakeRun("buggy:a", 1, Own("s/x", 3, 2, 3), 2).AtMinimum);
        Assert.False(FakeRun("buggy:a", 1, Own("s/x", 3, 2, 2), null).AtMinimum); // no recorded minimum for the signature

        var row = FuzzBenchRow.Of("buggy:a", [FakeRun("buggy:a", 1, Own("s/x", 10, 4, 2), 2), FakeRun("buggy:a", 2, Own("s/y", 20, null, 3), 2),
            FakeRun("buggy:a", 3, null, null)]);
        Assert.Equal((3, 2, 1, 15.0, 4.0), (row.Runs, row.Found, row.AtMinimum, row.MedianSeconds, row.MedianAflSeconds));
        Assert.Equal(["s/x", "s/y"], row.Signatures);
        Assert.Equal([2, 3], row.ShrunkLengths);
        Assert.False(row.AllAtMinimum);
        Assert.True(FuzzBenchRow.Of("buggy:a", [FakeRun("buggy:a", 1, Own("s/x", 10, 4, 2), 2)]).AllAtMinimum);
        Assert.False(FuzzBenchRow.Of("buggy:a", [FakeRun("buggy:a", 1, Own("s/x", 10, 4, 2), 2), FakeRun("buggy:a", 2, null, null, "afl-fuzz exited")]).AllAtMinimum);
    }

    private static List<FuzzBenchRow> FakeRows() =>
    [
        FuzzBenchRow.Of("buggy:no-upper-coalesce", [FakeRun("buggy:no-upper-coalesce", 1, Own("coalescing/kfree", 12.9, 3.0, 2), 2)]),
        FuzzBenchRow.Of("buggy:overlapping-claims", [FakeRun("buggy:overlapping-claims", 1, null, null) with
            { NotOwn = [new FuzzFinding("crash/OverflowException", 9, 1, "afl", 1, 0, 40, 0.2, "crash/OverflowException", null)] }]),
    ];

    [Fact]
    public void The_fuzz_table_has_a_row_per_target()
    {
        var o = new StringWriter();
        BenchCommand.WriteFuzzTable(FakeRows(), o);
        string t = o.ToString();
        foreach (var h in new[] { "target", "found", "median s to find", "median AFL++ s", "at minimum", "shrunk/minimum", "median s to shrink", "signatures", "from", "not the target's own" })
            Assert.Contains(h, t);
        string upper = t.Split('\n').Single(l => l.Contains("buggy:no-upper-coalesce", StringComparison.Ordinal));
        foreach (var cell in new[] { "1/1", "12.9", "3.0", "2/2", "0.50", "coalescing/kfree", "afl" })
            Assert.Contains(cell, upper);
        string claims = t.Split('\n').Single(l => l.Contains("buggy:overlapping-claims", StringComparison.Ordinal));
        Assert.Contains("0/1", claims);
        Assert.Contains("crash/OverflowException", claims);
    }

    [Fact]
    public void The_fuzz_json_is_one_line_with_camel_case_members_and_null_for_no_median()
    {
        string json = BenchCommand.FuzzJson(FakeRows(), 1, TimeSpan.FromSeconds(30), "/tmp/fuzzbuild", ok: false);
        Assert.DoesNotContain('\n', json.TrimEnd());
        var root = JsonDocument.Parse(json).RootElement;
        Assert.Equal("kmem-verify/bench", root.GetProperty("schema").GetString());
        Assert.Equal("fuzz", root.GetProperty("engine").GetString());
        Assert.Equal(30, root.GetProperty("budgetSeconds").GetDouble());
        Assert.False(root.GetProperty("ok").GetBoolean());
        var targets = root.GetProperty("targets");
        Assert.Equal(2, targets.GetArrayLength());
        var first = targets[0];
        Assert.Equal("buggy:no-upper-coalesce", first.GetProperty("target").GetString());
        Assert.Equal(1, first.GetProperty("found").GetInt32());
        var run = first.GetProperty("runResults")[0];
        Assert.Equal(1, run.GetProperty("aflSeed").GetInt32());
        Assert.True(run.GetProperty("atMinimum").GetBoolean());
        Assert.Equal(2, run.GetProperty("minimum").GetInt32());
        Assert.Equal("coalescing/kfree", run.GetProperty("first").GetProperty("signature").GetString());
        Assert.Equal(3.0, run.GetProperty("first").GetProperty("aflSeconds").GetDouble());
        var none = targets[1];
        Assert.Equal(JsonValueKind.Null, none.GetProperty("medianSeconds").ValueKind);
        Assert.Equal(JsonValueKind.Null, none.GetProperty("runResults")[0].GetProperty("first").ValueKind);
        Assert.Equal("crash/OverflowException", none.GetProperty("runResults")[0].GetProperty("notOwn")[0].GetProperty("onReference").GetString());
    }

    [Fact]
    public void The_check_json_has_the_same_envelope()
    {
        var rows = new List<BenchRow> { new("buggy:a", 2, 0, double.NaN, double.NaN, 0, [], [], double.NaN) };
        var root = JsonDocument.Parse(BenchCommand.CheckJson(rows, 2, ok: false)).RootElement;
        Assert.Equal(("kmem-verify/bench", "check", 2), (root.GetProperty("schema").GetString(), root.GetProperty("engine").GetString(), root.GetProperty("runs").GetInt32()));
        var t = root.GetProperty("targets")[0];
        Assert.Equal(0, t.GetProperty("detected").GetInt32());
        Assert.Equal(JsonValueKind.Null, t.GetProperty("medianCases").ValueKind);
    }

    [Fact]
    public void The_progress_line_says_what_was_found_and_against_which_minimum()
    {
        Assert.Equal("  buggy:a run 1/1 (AFL++ -s 1): found coalescing/kfree at 12.9 s (AFL++ 3.0 s), shrunk to 2 ops (minimum 2) in 0.5 s",
            FuzzBench.ProgressLine(FakeRun("buggy:a", 1, Own("coalescing/kfree", 12.9, 3.0, 2), 2), 1));
        Assert.Equal("  buggy:a run 2/3 (AFL++ -s 2): not found in 30 s", FuzzBench.ProgressLine(FakeRun("buggy:a", 2, null, null), 3));
    }
}
