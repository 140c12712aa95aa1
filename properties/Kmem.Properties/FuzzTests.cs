using System.Text;
using Kmem.Engines.Fuzzing;
using Kmem.Reference;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;
using Kmem.Zoo;
using Xunit;

namespace Kmem.Properties;

/// <summary>
/// The pure C# parts of fuzzing (issue 5): harness decoding and checks, crash triage (replay,
/// dedup by signature, shrink, write), corpus seeds, `corpus show`, the dictionaries, AFL++ stats.
/// AFL++ itself is exercised by fuzz/ci-check.sh, not here.
/// </summary>
public class FuzzTests
{
    private const string NoUpper = "buggy:no-upper-coalesce";

    private static string Temp()
    {
        string d = Path.Combine(Path.GetTempPath(), "kmem-fuzztests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>The binary encoding of the committed no-upper-coalesce regression, followed by noise operations.</summary>
    private static byte[] CrashInput(bool noise)
    {
        var file = Corpus.Files("regressions").Select(f => (string)f[0]).First(f => f.StartsWith("no-upper-coalesce", StringComparison.Ordinal));
        var s = Corpus.Load("regressions", file);
        if (noise)
        {
            // meminfo and allocations after the failing free: the shrinker must remove them.
            var ops = s.Ops.ToList();
            for (int i = 0; i < 6; i++) ops.Add(new Op { Kind = OpKind.AllocPages, Bind = "q" + i, Number = (ulong)(i % 3) });
            ops.Add(new Op { Kind = OpKind.Meminfo });
            s = s with { Ops = ops };
        }
        return BinaryCodec.Encode(s);
    }

    private static CrashTriage Triage(string findings, string target = NoUpper, IEnumerable<string>? known = null, HarnessOptions? o = null) =>
        new(o ?? new HarnessOptions { Target = target }, TargetRegistry.Get(target)!.Create,
            (sig, text) => Kmem.Cli.Cli.WriteFinding(findings, sig, target, text), known)
        { Reference = TargetRegistry.Get("reference")!.Create };

    // ------------------------------------------------------------------ harness

    [Fact]
    public void Scenario_harness_throws_a_violation_whose_message_starts_with_the_signature()
    {
        var input = CrashInput(noise: false);
        var e = Assert.Throws<FuzzViolationException>(() =>
            ScenarioHarness.Check(input, new HarnessOptions { Target = NoUpper }, TargetRegistry.Get(NoUpper)!.Create));
        Assert.Equal("coalescing/free_pages", e.Signature);
        Assert.StartsWith("coalescing/free_pages: ", e.Message);
        // The same input holds on the reference.
        ScenarioHarness.Check(input, new HarnessOptions(), TargetRegistry.Get("reference")!.Create);
    }

    [Fact]
    public void Profile_override_forces_every_input_onto_the_profile_and_keeps_decoding_total()
    {
        var rnd = new Random(5);
        foreach (var p in Profiles.All)
        {
            var o = new HarnessOptions { Profile = p.Name };
            Assert.Equal(p.Name, ScenarioHarness.Decode([], o).ProfileName);
            for (int i = 0; i < 200; i++)
            {
                var bytes = new byte[rnd.Next(0, 64)];
                rnd.NextBytes(bytes);
                var s = ScenarioHarness.Decode(bytes, o);
                Assert.Equal(p.Name, s.ProfileName);
                ScenarioParser.Parse(ScenarioPrinter.Print(s)); // still a valid scenario
            }
        }
    }

    [Fact]
    public void Buddy_filter_keeps_only_buddy_operations_and_no_dangling_reference()
    {
        var rnd = new Random(11);
        var o = new HarnessOptions { Ops = OpFilter.Buddy };
        int dropped = 0;
        for (int i = 0; i < 2000; i++)
        {
            var bytes = new byte[rnd.Next(0, 200)];
            rnd.NextBytes(bytes);
            var all = BinaryCodec.Decode(bytes);
            var s = ScenarioHarness.Decode(bytes, o);
            Assert.All(s.Ops, op => Assert.Contains(op.Kind, ScenarioHarness.BuddyKinds));
            dropped += all.Ops.Count - s.Ops.Count;
            var text = ScenarioPrinter.Print(s);
            Assert.Equal(text, ScenarioPrinter.Print(ScenarioParser.Parse(text)));
        }
        Assert.True(dropped > 0);
    }

    [Fact]
    public void Harness_options_round_trip_through_their_command_line_and_the_environment()
    {
        var o = new HarnessOptions { Target = NoUpper, Profile = "linux-4.19-x86_64", Ops = OpFilter.Buddy, Mode = HarnessMode.OutOfProcess };
        Assert.Equal(o, HarnessOptions.Parse(o.ToArgs().ToList(), _ => null));
        var env = new Dictionary<string, string> { ["KMEM_FUZZ_HARNESS"] = "parser", ["KMEM_FUZZ_MODE"] = "libfuzzer" };
        var fromEnv = HarnessOptions.Parse([], k => env.GetValueOrDefault(k));
        Assert.Equal(HarnessKind.Parser, fromEnv.Kind);
        Assert.Equal(HarnessMode.LibFuzzer, fromEnv.Mode);
        Assert.Throws<ArgumentException>(() => HarnessOptions.Parse(["--ops", "slab"], _ => null));
        Assert.Throws<ArgumentException>(() => HarnessOptions.Parse(["--profile", "linux-9"], _ => null));
    }

    [Fact]
    public void Parser_harness_answers_only_ScenarioException_or_a_finding_on_random_and_mutated_text()
    {
        var rnd = new Random(3);
        var examples = Corpus.Files("examples").Select(f => File.ReadAllBytes(Path.Combine(Corpus.Root, "corpus", "examples", (string)f[0]))).ToList();
        foreach (var ex in examples) Assert.Equal("ok", ParserHarness.Signature(ex));
        var words = Encoding.UTF8.GetBytes("profile ram hole boot mem=4G memmap=1M$0x1000 vmalloc=1T max_order=99 alloc_pages free_pages p0 = => expect MemFree == 0x 18446744073709551616 \n # @");
        for (int i = 0; i < 3000; i++)
        {
            var b = examples[rnd.Next(examples.Count)].ToList();
            for (int m = rnd.Next(1, 8); m > 0; m--)
            {
                int at = rnd.Next(b.Count + 1);
                switch (rnd.Next(3))
                {
                    case 0 when b.Count > 0: b.RemoveAt(Math.Min(at, b.Count - 1)); break;
                    case 1: b.Insert(at, words[rnd.Next(words.Length)]); break;
                    default: b.Insert(at, (byte)rnd.Next(256)); break;
                }
            }
            string sig = ParserHarness.Signature(b.ToArray());
            Assert.False(sig.StartsWith("parser-crash/", StringComparison.Ordinal), $"{sig} on:\n{Encoding.UTF8.GetString(b.ToArray())}");
        }
    }

    // ------------------------------------------------------------------ triage

    [Fact]
    public void Triage_replays_shrinks_and_writes_a_new_crash_then_deduplicates_by_signature()
    {
        string dir = Temp();
        try
        {
            var triage = Triage(dir);
            var first = triage.Process(CrashInput(noise: true), "main/crashes/id:000000,sig:06");
            Assert.Equal(TriageKind.New, first.Kind);
            Assert.Equal("coalescing/free_pages", first.Signature);
            Assert.True(first.OriginalOps > first.ShrunkOps, $"{first.OriginalOps} -> {first.ShrunkOps}");
            int minimum = TargetRegistry.Get(NoUpper)!.Minimal.Single(m => m.Signature == first.Signature).Ops;
            Assert.True(first.ShrunkOps == minimum, $"shrunk to {first.ShrunkOps} operations; the minimum is {minimum}");
            Assert.True(File.Exists(first.Path));
            Assert.True(File.Exists(Path.ChangeExtension(first.Path!, ".input")));

            // The finding is a complete .kmem: it parses, says what it is, fails on its target, holds on the reference.
            var s = ScenarioParser.Parse(File.ReadAllText(first.Path!), first.Path);
            Assert.Equal(NoUpper, Corpus.HeaderValue(s, "target"));
            Assert.Equal("coalescing/free_pages", Corpus.HeaderValue(s, "signature"));
            Assert.Equal("coalescing/free_pages", Corpus.Run(s, NoUpper).Signature);
            Assert.True(Corpus.Run(s).Ok);
            // The differential check: it holds on the reference, so it is the target's own bug.
            Assert.Equal("ok", first.OnReference);
            Assert.Equal("holds", Corpus.HeaderValue(s, "on the reference"));

            // Another crashing input with the same signature: counted, not written.
            var second = triage.Process(CrashInput(noise: false), "sec1/crashes/id:000003");
            Assert.Equal(TriageKind.Duplicate, second.Kind);
            Assert.Single(Directory.GetFiles(dir, "*.kmem"));

            // A resumed campaign reads the signatures back from disk.
            Assert.Equal(["coalescing/free_pages"], CrashTriage.SignaturesOnDisk(dir).ToList());
            var resumed = Triage(dir, known: CrashTriage.SignaturesOnDisk(dir));
            Assert.Equal(TriageKind.Duplicate, resumed.Process(CrashInput(noise: true), "main/crashes.2026/id:000000").Kind);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Triage_reports_an_input_that_holds_in_process_as_unreproduced()
    {
        string dir = Temp();
        try
        {
            var r = Triage(dir, target: "reference").Process(CrashInput(noise: false), "main/crashes/id:000001");
            Assert.Equal(TriageKind.Unreproduced, r.Kind);
            Assert.Empty(Directory.GetFiles(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    private sealed class ThrowingTarget : ReferenceAllocator
    {
        public override string Name => "throwing";
        // A wild memblock_free at one odd address: nothing in the allocator itself ever frees there.
        public override TargetResult MemblockFree(ulong address) =>
            address == 0x123 ? throw new InvalidOperationException("boom") : base.MemblockFree(address);
    }

    [Fact]
    public void An_exception_of_the_checker_is_a_crash_signature_and_is_shrunk_like_a_violation()
    {
        string dir = Temp();
        try
        {
            var o = new HarnessOptions { Target = "throwing", Profile = Profiles.DefaultName };
            var ops = Enumerable.Range(0, 7).Select(i => new Op { Kind = OpKind.MemblockAlloc, Bind = "p" + i, Number = 4096 }).ToList<Op>();
            ops.Insert(4, new Op { Kind = OpKind.MemblockFree, Ref = Ref.At(0x123) });
            var s = new Scenario(new Header { Profile = Profiles.DefaultName, Ram = [new Kmem.Scenarios.Range(0, 64UL << 20)] }, ops);
            var input = BinaryCodec.Encode(s);
            Assert.Throws<InvalidOperationException>(() => ScenarioHarness.Check(input, o, () => new ThrowingTarget()));
            var triage = new CrashTriage(o, () => new ThrowingTarget(), (sig, text) => Kmem.Cli.Cli.WriteFinding(dir, sig, "throwing", text));
            var r = triage.Process(input, "main/crashes/id:000000");
            Assert.Equal(TriageKind.New, r.Kind);
            Assert.Equal("crash/InvalidOperationException", r.Signature);
            Assert.True(r.ShrunkOps == 1, File.ReadAllText(r.Path!));
            Assert.Contains("memblock_free @0x123", File.ReadAllText(r.Path!));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Parser_triage_minimizes_the_text_while_the_signature_holds()
    {
        var small = CrashTriage.MinimizeBytes(Encoding.ASCII.GetBytes("xxxxAxxBxxxx"), b => b.Contains((byte)'A') && b.Contains((byte)'B'));
        Assert.Equal("AB", Encoding.ASCII.GetString(small));
    }

    [Fact]
    public void A_hang_is_saved_with_its_decoded_scenario_and_a_replay_note()
    {
        string dir = Temp();
        try
        {
            var triage = Triage(Path.Combine(dir, "findings"));
            string path = triage.SaveHang(CrashInput(noise: false), "main-id000000", "main/hangs/id:000000", Path.Combine(dir, "hangs"), 5000);
            string text = File.ReadAllText(path);
            Assert.Contains("replay: time kmem-verify replay", text);
            Assert.Contains("-t 5000 ms", text);
            ScenarioParser.Parse(text, path);
            Assert.True(File.Exists(Path.Combine(dir, "hangs", "main-id000000.input")));
        }
        finally { Directory.Delete(dir, true); }
    }

    // ------------------------------------------------------------------ corpus and dictionary

    [Fact]
    public void Seeds_encode_every_example_and_generated_scenarios_and_none_fails_on_the_reference()
    {
        var files = FuzzCorpus.KmemFiles([Path.Combine(Corpus.Root, "corpus", "examples")]);
        var seeds = FuzzCorpus.BinarySeeds(files, 10, 1);
        Assert.True(seeds.Count >= files.Count + 5);
        Assert.Equal(seeds.Count, seeds.Select(s => s.Name).Distinct().Count());
        var reference = TargetRegistry.Get("reference")!.Create;
        foreach (var s in seeds)
            ScenarioHarness.Check(s.Bytes, new HarnessOptions { Ops = OpFilter.Buddy }, reference);
        // Deterministic: the same call gives the same bytes.
        Assert.Equal(seeds.Select(s => Convert.ToHexString(s.Bytes)), FuzzCorpus.BinarySeeds(files, 10, 1).Select(s => Convert.ToHexString(s.Bytes)));
    }

    [Fact]
    public void Committed_seeds_are_small_and_hold_on_the_reference()
    {
        var seeds = Directory.GetFiles(Path.Combine(Corpus.Root, "corpus", "seeds"));
        Assert.InRange(seeds.Length, 10, 100);
        var reference = TargetRegistry.Get("reference")!.Create;
        foreach (var f in seeds)
        {
            var b = File.ReadAllBytes(f);
            Assert.True(b.Length <= 1024, $"{f}: {b.Length} bytes");
            ScenarioHarness.Check(b, new HarnessOptions { Ops = OpFilter.Buddy }, reference);
        }
    }

    [Fact]
    public void Corpus_encode_then_show_prints_the_scenario_back()
    {
        string dir = Temp();
        try
        {
            string kmem = Path.Combine(Corpus.Root, "corpus", "examples", "coalescing-after-frees.kmem");
            string bin = Path.Combine(dir, "x.bin");
            var (code, _, err) = RunCli("corpus", "encode", kmem, bin);
            Assert.True(code == 0, err);
            (code, string shown, err) = RunCli("corpus", "show", bin);
            Assert.True(code == 0, err);
            var original = ScenarioParser.Parse(File.ReadAllText(kmem), kmem);
            Assert.Equal(ScenarioPrinter.Print(BinaryCodec.Decode(BinaryCodec.Encode(original))), shown);
            Assert.Equal(original.Ops.Count(o => o.Kind != OpKind.Expect), ScenarioParser.Parse(shown).Ops.Count);

            (code, string seeded, err) = RunCli("corpus", "seed", Path.Combine(dir, "seeds"), "--generated", "3");
            Assert.True(code == 0, err);
            Assert.Contains("seeds in", seeded);
            Assert.True(Directory.GetFiles(Path.Combine(dir, "seeds")).Length >= 3);

            Assert.Equal(2, RunCli("corpus", "show", Path.Combine(dir, "missing.bin")).Code);
            Assert.Equal(2, RunCli("corpus", "show", bin, "--profile", "linux-9").Code);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Corpus_cost_times_every_input_as_the_harness_runs_it()
    {
        string dir = Temp();
        try
        {
            // A failing input (the regression's, on its buggy target), a passing one, and AFL++'s
            // dot files, which are not inputs.
            string regression = Directory.GetFiles(Path.Combine(Corpus.Root, "corpus", "regressions"), "no-upper-coalesce-*.kmem").Order(StringComparer.Ordinal).First();
            var failing = ScenarioParser.Parse(File.ReadAllText(regression), regression);
            File.WriteAllBytes(Path.Combine(dir, "b-fails"), BinaryCodec.Encode(failing));
            string kmem = Path.Combine(Corpus.Root, "corpus", "examples", "hole.kmem");
            File.WriteAllBytes(Path.Combine(dir, "a-holds"), BinaryCodec.Encode(ScenarioParser.Parse(File.ReadAllText(kmem), kmem)));
            File.WriteAllBytes(Path.Combine(dir, ".cur_input"), [0]);
            Directory.CreateDirectory(Path.Combine(dir, ".state"));

            var target = TargetRegistry.Get("buggy:no-upper-coalesce")!;
            var costs = InputCosts.Measure(InputCosts.Files(dir), new HarnessOptions { Target = target.Name }, target.Create, 2);
            Assert.Equal(["a-holds", "b-fails"], costs.Select(c => c.Name));
            Assert.Equal("held", costs[0].Outcome);
            var verdict = ScenarioRunner.Run(BinaryCodec.Decode(BinaryCodec.Encode(failing)), target.Create);
            Assert.False(verdict.Ok);
            Assert.Equal(verdict.Signature, costs[1].Outcome);
            Assert.All(costs, c => Assert.True(c.CheckedUs > 0 && c.AloneUs > 0 && c.Ops > 0 && c.RamBytes > 0));
            Assert.Equal(BinaryCodec.Decode(File.ReadAllBytes(Path.Combine(dir, "a-holds"))).Ops.Count, costs[0].Ops);

            var (code, text, err) = RunCli("corpus", "cost", dir, "--target", target.Name, "--runs", "1", "--top", "5");
            Assert.True(code == 0, err);
            Assert.Contains("2 inputs in", text);
            Assert.Contains($"  {verdict.Signature}  b-fails", text);
            Assert.Contains("  held  a-holds", text);
            Assert.Contains("checked: median", text);
            Assert.DoesNotContain(".cur_input", text);

            Assert.Equal(2, RunCli("corpus", "cost", Path.Combine(dir, "missing")).Code);
            Assert.Equal(2, RunCli("corpus", "cost", Path.Combine(dir, ".state")).Code);   // no inputs
            Assert.Equal(2, RunCli("corpus", "cost", dir, "--runs", "0").Code);
            Assert.Equal(2, RunCli("corpus", "cost", dir, "--target", "buggy:nonesuch").Code);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_committed_dictionaries_are_what_the_codec_and_the_language_give()
    {
        Assert.Equal(FuzzCorpus.BinaryDictionary(), File.ReadAllText(Path.Combine(Corpus.Root, "fuzz", "kmem.dict")));
        Assert.Equal(FuzzCorpus.TextDictionary(), File.ReadAllText(Path.Combine(Corpus.Root, "fuzz", "kmem-text.dict")));
        foreach (var dict in new[] { FuzzCorpus.BinaryDictionary(), FuzzCorpus.TextDictionary() })
        {
            var entries = dict.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')).ToList();
            Assert.NotEmpty(entries);
            Assert.All(entries, e => Assert.Matches("^\"([\\x20-\\x21\\x23-\\x5B\\x5D-\\x7E]|\\\\x[0-9A-F]{2})+\"$", e));
        }
        // A few tokens by meaning, not only by count (the count alone is the same loop twice).
        Assert.Contains($"\"\\x{(byte)OpKind.MemInit:X2}\"", FuzzCorpus.BinaryDictionary());
        Assert.Contains($"\"\\x{(byte)OpKind.Kmalloc:X2}\\x80\\x96\\xE9\\xFF\\xFF\\xFF\\xFF\\xFF\\xFF\\xFF\\x01\\x00\"", FuzzCorpus.BinaryDictionary()); // kmalloc 0xfffffffffffff496, a raw size
        Assert.Contains("\"alloc_pages \"", FuzzCorpus.TextDictionary());
        Assert.Equal("\"a\\x22b\\x5C\\x0A\"", FuzzCorpus.Quote("a\"b\\\n"));
    }

    // ------------------------------------------------------------------ campaign plumbing

    [Fact]
    public void AFL_stats_files_and_names_are_read()
    {
        string dir = Temp();
        try
        {
            string inst = Path.Combine(dir, "main");
            Directory.CreateDirectory(Path.Combine(inst, "queue"));
            Directory.CreateDirectory(Path.Combine(inst, "crashes"));
            Directory.CreateDirectory(Path.Combine(inst, "crashes.2026-11-22-10:00:00"));
            File.WriteAllText(Path.Combine(inst, "fuzzer_stats"),
                "start_time        : 1795390898\nexecs_done        : 6325\nexecs_per_sec     : 105.38\nexecs_ps_last_min : 103.74\ncorpus_count      : 392\nstability         : 99.50%\nlast_find         : 1795390958\n");
            for (int i = 0; i < 3; i++) File.WriteAllText(Path.Combine(inst, "queue", $"id:00000{i},time:0,+cov"), "x");
            File.WriteAllText(Path.Combine(inst, "crashes", "id:000000,sig:06,src:000002,time:25276,execs:2684,op:havoc,rep:16"), "x");
            File.WriteAllText(Path.Combine(inst, "crashes", "README.txt"), "not an input");
            File.WriteAllText(Path.Combine(inst, "crashes.2026-11-22-10:00:00", "id:000000,sig:06"), "y");
            var s = AflStats.Read(inst);
            Assert.Equal("main", s.Name);
            Assert.Equal(6325, s.ExecsDone);
            Assert.Equal(103.74, s.ExecsPerSecRecent, 2);
            Assert.Equal(99.5, s.Stability!.Value, 2);
            Assert.Equal(3, s.Corpus);
            Assert.Equal(2, s.Crashes);
            Assert.Equal(25276, AflStats.TimeField("id:000000,sig:06,src:000002,time:25276,execs:2684"));
            Assert.Null(AflStats.TimeField("id:000000,sig:06"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("90", 90)]
    [InlineData("90s", 90)]
    [InlineData("10m", 600)]
    [InlineData("1h30m", 5400)]
    [InlineData("0:01:05", 65)]
    public void Durations_parse(string text, int seconds)
    {
        Assert.True(Campaign.TryParseDuration(text, out var t));
        Assert.Equal(seconds, (int)t.TotalSeconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("ten")]
    [InlineData("10x")]
    [InlineData("0")]
    public void Bad_durations_are_refused(string text) => Assert.False(Campaign.TryParseDuration(text, out _));

    [Fact]
    public void A_campaign_that_cannot_start_afl_is_a_setup_error_and_an_existing_one_needs_resume()
    {
        string dir = Temp();
        try
        {
            var o = new CampaignOptions
            {
                Harness = new HarnessOptions(), OutDir = dir, HarnessDll = "/nonexistent/Kmem.Fuzz.dll",
                AflFuzz = "/nonexistent/afl-fuzz", Duration = TimeSpan.FromSeconds(5),
                SeedsDir = Path.Combine(Corpus.Root, "corpus", "seeds"),
            };
            var c = new Campaign(o, TargetRegistry.Get("reference")!.Create, (d, sig, text) => Kmem.Cli.Cli.WriteFinding(d, sig, "reference", text), TextWriter.Null, "test");
            var r = c.Run(CancellationToken.None);
            Assert.NotNull(r.SetupError);
            Assert.Contains("afl-fuzz stopped without running the harness", r.SetupError);

            Directory.CreateDirectory(Path.Combine(dir, "afl", "main", "queue"));
            var again = new Campaign(o, TargetRegistry.Get("reference")!.Create, (d, sig, text) => "", TextWriter.Null, "test").Run(CancellationToken.None);
            Assert.Contains("--resume", again.SetupError);

            // Resuming with different harness options is refused too.
            var other = o with { Resume = true, Harness = new HarnessOptions { Target = NoUpper } };
            var mismatch = new Campaign(other, TargetRegistry.Get(NoUpper)!.Create, (d, sig, text) => "", TextWriter.Null, "test").Run(CancellationToken.None);
            Assert.Contains("resume with the same", mismatch.SetupError);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_lone_instance_is_a_secondary_and_several_have_one_main()
    {
        // -M makes AFL++ 4.04c take the queue in order (-Z) without trimming: a one-job campaign then
        // spent its whole minute on queue entry 0 (fuzz/README.md, session 4). So -M only with company.
        CampaignOptions Jobs(int n) => new()
        {
            Harness = new HarnessOptions(), OutDir = "/tmp/kmem-unused", HarnessDll = "/nonexistent/Kmem.Fuzz.dll", Jobs = n,
        };
        static string Role(IReadOnlyList<string> args) => args.Single(a => a is "-M" or "-S");
        var lone = new Campaign(Jobs(1), TargetRegistry.Get("reference")!.Create, (d, sig, text) => "", TextWriter.Null, "test");
        var lonely = lone.AflArgs("main", main: true, "in", "kmem.dict");
        Assert.Equal("-S", Role(lonely));
        Assert.Equal("main", lonely[lonely.ToList().IndexOf("-S") + 1]);
        var crowd = new Campaign(Jobs(3), TargetRegistry.Get("reference")!.Create, (d, sig, text) => "", TextWriter.Null, "test");
        Assert.Equal("-M", Role(crowd.AflArgs("main", main: true, "in", "kmem.dict")));
        Assert.Equal("-S", Role(crowd.AflArgs("sec1", main: false, "in", "kmem.dict")));
    }

    [Fact]
    public void Fuzz_command_refuses_bad_usage_with_exit_code_2()
    {
        Assert.Equal(2, RunCli("fuzz", "--target", "buggy:nope").Code);
        Assert.Equal(2, RunCli("fuzz", "--duration", "soon").Code);
        Assert.Equal(2, RunCli("fuzz", "--ops", "slab").Code);
        Assert.Equal(2, RunCli("fuzz", "--mode", "libfuzzer").Code);
        Assert.Equal(2, RunCli("fuzz", "--jobs", "0").Code);
        var (code, _, err) = RunCli("fuzz", "--build", Path.Combine(Path.GetTempPath(), "kmem-no-such-build"), "--duration", "1s");
        Assert.Equal(2, code);
        Assert.True(err.Contains("fuzz/setup.sh", StringComparison.Ordinal), err);
    }

    private static (int Code, string Out, string Err) RunCli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Kmem.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }
}
