using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Kmem.Target;

namespace Kmem.Engines.Fuzzing;

public sealed record CampaignOptions
{
    public required HarnessOptions Harness { get; init; }
    /// <summary>The campaign folder: afl/ (AFL++'s sync folder), findings/, hangs/, unreproduced/, logs/.</summary>
    public required string OutDir { get; init; }
    /// <summary>The published, instrumented harness (fuzz/build/Kmem.Fuzz.dll).</summary>
    public required string HarnessDll { get; init; }
    /// <summary>One main (-M) and Jobs - 1 secondary afl-fuzz instances; a lone instance runs as -S main (see AflArgs).</summary>
    public int Jobs { get; init; } = 1;
    /// <summary>Null: until interrupted.</summary>
    public TimeSpan? Duration { get; init; }
    public bool Resume { get; init; }
    /// <summary>afl-fuzz -t: per-input time limit in milliseconds.</summary>
    public int TimeoutMs { get; init; } = 5000;
    /// <summary>Binary seeds for the scenario harness; null: generate them into OUT/seeds.</summary>
    public string? SeedsDir { get; init; }
    /// <summary>Folders of `.kmem` files used when seeds are generated (and for the parser harness's text seeds).</summary>
    public IReadOnlyList<string> ExampleDirs { get; init; } = [];
    public string AflFuzz { get; init; } = "afl-fuzz";
    public string Dotnet { get; init; } = "dotnet";
    public TimeSpan StatusInterval { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// Stop after the first new finding (benchmarks: time to first crash); for a target other than
    /// the reference, the first one that holds on the reference (the target's own bug).
    /// </summary>
    public bool StopOnFinding { get; init; }
}

public sealed record CampaignResult
{
    /// <summary>Set when the campaign could not start (exit code 2).</summary>
    public string? SetupError { get; init; }
    public int NewFindings { get; init; }
    /// <summary>Every finding in OUT/findings, this run's and earlier runs' (a resumed campaign).</summary>
    public IReadOnlyList<string> Signatures { get; init; } = [];
    public int Duplicates { get; init; }
    public int Unreproduced { get; init; }
    public int Hangs { get; init; }
    public TimeSpan Elapsed { get; init; }
    /// <summary>Campaign time until the first new finding was on disk, if any.</summary>
    public TimeSpan? FirstFinding { get; init; }
    /// <summary>The same for the first finding that holds on the reference (the target's own bug).</summary>
    public TimeSpan? FirstOwnFinding { get; init; }
    public IReadOnlyList<AflInstanceStats> Instances { get; init; } = [];
    /// <summary>Set when every afl-fuzz instance stopped on its own before the campaign's time was up.</summary>
    public string? EarlyExit { get; init; }
}

/// <summary>
/// A fuzz campaign: one main and N-1 secondary afl-fuzz instances on one sync folder (a lone instance runs as -S main), live status
/// from their stats, and triage of every new crash (in-process replay, dedup by signature, shrink,
/// write) and hang (saved with a replay note). Everything found is on disk before it is reported,
/// and the triage log makes a resumed campaign pick up where a killed one stopped.
/// </summary>
public sealed class Campaign
{
    private readonly CampaignOptions o;
    private readonly TextWriter log;
    private readonly CrashTriage triage;
    private readonly string sync, findings, hangs, unreproduced, logs, triageLog;
    private readonly HashSet<string> processed = new(StringComparer.Ordinal);
    private readonly List<(string Name, Process Process)> instances = [];
    private readonly Stopwatch clock = new();
    private int newFindings, ownFindings, duplicates, unreproducedCount, hangCount;
    private TimeSpan? firstFinding, firstOwnFinding;

    /// <param name="writeFinding">(signature, text) -> path of the written `.kmem`, in OUT/findings.</param>
    public Campaign(CampaignOptions options, Func<ITarget> target, Func<string, string, string, string> writeFinding, TextWriter log, string tool,
        Func<ITarget>? reference = null)
    {
        o = options;
        this.log = log;
        sync = Path.Combine(o.OutDir, "afl");
        findings = Path.Combine(o.OutDir, "findings");
        hangs = Path.Combine(o.OutDir, "hangs");
        unreproduced = Path.Combine(o.OutDir, "unreproduced");
        logs = Path.Combine(o.OutDir, "logs");
        triageLog = Path.Combine(o.OutDir, "triage.tsv");
        var known = CrashTriage.SignaturesOnDisk(findings).Concat(ReadTriageLog()).ToList();
        triage = new CrashTriage(o.Harness, target, (sig, text) => writeFinding(findings, sig, text), known, tool) { Reference = reference };
    }

    public static string HarnessArgsFile(string outDir) => Path.Combine(outDir, "harness.args");

    /// <summary>The argument vector of one afl-fuzz instance.</summary>
    public IReadOnlyList<string> AflArgs(string name, bool main, string input, string dict, TimeSpan? duration = null)
    {
        // A lone instance runs as -S: AFL++ 4.04c's -M "sets -Z and disables trimming", and with -Z
        // (the queue in order) a one-job campaign spent a whole minute in the havoc stage of queue
        // entry 0, which every new path it found doubled (0 of 2 finds of vmalloc-gap-off-by-one,
        // 57 exec/s); -S picks entries weighted by speed and size (2 of 2, 315-589 exec/s).
        // With several jobs, main is -M as AFL++ wants one.
        bool asMain = main && o.Jobs > 1;
        var a = new List<string> { "-i", input, "-o", sync, asMain ? "-M" : "-S", name, "-t", o.TimeoutMs.ToString(CultureInfo.InvariantCulture), "-x", dict };
        if ((duration ?? o.Duration) is { } d)
            a.AddRange(["-V", ((long)Math.Ceiling(d.TotalSeconds)).ToString(CultureInfo.InvariantCulture)]);
        a.AddRange(["--", o.Dotnet, o.HarnessDll]);
        a.AddRange(o.Harness.ToArgs());
        return a;
    }

    /// <summary>The environment every instance gets (also what fuzz/cluster.sh sets).</summary>
    public IReadOnlyDictionary<string, string> AflEnvironment()
    {
        var env = new Dictionary<string, string>
        {
            ["AFL_SKIP_BIN_CHECK"] = "1",       // the target is `dotnet`, not an instrumented ELF
            ["AFL_NO_UI"] = "1",
            ["AFL_SKIP_CPUFREQ"] = "1",
            ["AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES"] = "1",
            ["AFL_TRY_AFFINITY"] = "1",         // bind to a free core if there is one; never refuse to start
            ["AFL_FAST_CAL"] = "1",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_TieredPGO"] = "0",         // fewer re-JITs while calibrating: steadier stability
        };
        // AFL++ reads its flags by presence (AFL_AUTORESUME=0 would turn it on): set only when resuming.
        if (o.Resume) env["AFL_AUTORESUME"] = "1";
        return env;
    }

    public CampaignResult Run(CancellationToken cancel)
    {
        if (Prepare() is { } error) return new CampaignResult { SetupError = error };
        var (input, dict) = SeedsAndDictionary();
        if (input is null) return new CampaignResult { SetupError = dict };

        clock.Start();
        log.WriteLine($"kmem-verify fuzz: {o.Jobs} job(s), harness {string.Join(' ', o.Harness.ToArgs())}, -t {o.TimeoutMs} ms, " +
                      $"{(o.Duration is { } d ? "for " + FormatSpan(d) : "until interrupted")}{(o.Resume ? ", resuming" : "")}");
        log.WriteLine($"  sync folder {sync}; logs in {logs}; findings in {findings}");
        // AFL++ skips seeds that crash and never saves them: replay the seeds first, so a seed that
        // already shows a bug is a finding like any other.
        foreach (string seed in Directory.GetFiles(input).Order(StringComparer.Ordinal))
            Handle(input, "seeds", Path.GetFileName(seed), crash: true, quietUnreproduced: true);

        var env = AflEnvironment();
        for (int j = 0; j < o.Jobs; j++)
        {
            string name = j == 0 ? "main" : "sec" + j.ToString(CultureInfo.InvariantCulture);
            bool resumed = o.Resume && Directory.Exists(Path.Combine(sync, name, "queue"));
            // The seed replay above took part of the campaign's time: AFL++ gets what is left.
            var left = o.Duration is { } total ? total - clock.Elapsed : (TimeSpan?)null;
            if (left is { } l && l < TimeSpan.FromSeconds(1)) left = TimeSpan.FromSeconds(1);
            var args = AflArgs(name, j == 0, resumed ? "-" : input, dict, left);
            instances.Add((name, Start(name, args, env)));
        }

        var lastStatus = TimeSpan.Zero;
        var lastScan = TimeSpan.Zero;
        bool stopping = false;
        while (true)
        {
            if (!cancel.IsCancellationRequested) Supervise(dict);
            bool allExited = instances.All(i => i.Process.HasExited);
            if (allExited) break;
            if (!stopping && (cancel.IsCancellationRequested || (o.Duration is { } dd && clock.Elapsed >= dd + TimeSpan.FromSeconds(5))
                              || (o.StopOnFinding && ownFindings > 0)))
            {
                stopping = true;
                Stop();
                break;
            }
            if (clock.Elapsed - lastScan >= TimeSpan.FromSeconds(2))
            {
                Scan();
                lastScan = clock.Elapsed;
            }
            if (clock.Elapsed - lastStatus >= o.StatusInterval)
            {
                log.WriteLine(Status());
                lastStatus = clock.Elapsed;
            }
            cancel.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(250));
        }
        string? earlyExit = null;
        if (!stopping && (o.Duration is not { } full || clock.Elapsed < full - SuperviseUntilEnd))
        {
            // Every instance ended on its own, before its time: AFL++ aborted (a harness that no
            // longer starts, a broken build, a full disk). Say so, with the end of each log.
            earlyExit = string.Join("\n", instances.Select(i =>
                $"afl-fuzz instance {i.Name} exited (code {i.Process.ExitCode}) after {FormatSpan(clock.Elapsed)}; the end of {Path.Combine(logs, i.Name + ".log")}:\n" +
                Tail(Path.Combine(logs, i.Name + ".log"), 6)));
        }
        if (!stopping) Stop();
        Scan();
        var stats = InstanceDirs().Select(AflStats.Read).ToList();
        log.WriteLine(Status());
        // No exec at all is a set-up failure, unless the campaign itself stopped AFL++ that early: it
        // was interrupted, or --stop-on-finding stopped it at a finding the seed replay made.
        bool stoppedByUs = cancel.IsCancellationRequested || (o.StopOnFinding && ownFindings > 0);
        if (!stoppedByUs && stats.Sum(s => s.ExecsDone) == 0 && stats.All(s => s.Corpus == 0))
        {
            var tail = Tail(Path.Combine(logs, "main.log"), 25);
            return new CampaignResult
            {
                SetupError = $"afl-fuzz stopped without running the harness; the end of {Path.Combine(logs, "main.log")}:\n{tail}",
                Elapsed = clock.Elapsed,
            };
        }
        return new CampaignResult
        {
            NewFindings = newFindings,
            Signatures = triage.KnownSignatures.Order(StringComparer.Ordinal).ToList(),
            Duplicates = duplicates,
            Unreproduced = unreproducedCount,
            Hangs = hangCount,
            Elapsed = clock.Elapsed,
            FirstFinding = firstFinding,
            FirstOwnFinding = firstOwnFinding,
            Instances = stats,
            EarlyExit = earlyExit,
        };
    }

    // ------------------------------------------------------------------ set-up

    private string? Prepare()
    {
        Directory.CreateDirectory(o.OutDir);
        string argsFile = HarnessArgsFile(o.OutDir);
        string args = string.Join('\n', o.Harness.ToArgs().Where((a, i) => !IsModeArg(o.Harness.ToArgs(), i))) + "\n";
        bool hasCampaign = Directory.Exists(sync) && Directory.GetDirectories(sync).Length > 0;
        if (hasCampaign && !o.Resume)
            return $"{o.OutDir} already holds a campaign: pass --resume to continue it, or choose another --out";
        if (o.Resume && File.Exists(argsFile))
        {
            string before = File.ReadAllText(argsFile);
            if (before != args)
                return $"{o.OutDir} was started with harness options '{before.Replace('\n', ' ').Trim()}', not '{args.Replace('\n', ' ').Trim()}'; " +
                       "resume with the same --target, --profile and --ops";
        }
        foreach (var d in new[] { sync, findings, hangs, logs }) Directory.CreateDirectory(d);
        File.WriteAllText(argsFile, args);
        return null;
    }

    // The mode (persistent or out-of-process) may change between runs of one campaign; the rest may not.
    private static bool IsModeArg(IReadOnlyList<string> a, int i) => a[i] == "--mode" || (i > 0 && a[i - 1] == "--mode");

    private (string? Input, string DictOrError) SeedsAndDictionary()
    {
        string dict;
        string? input;
        if (o.Harness.Kind == HarnessKind.Parser)
        {
            dict = Path.Combine(o.OutDir, "kmem-text.dict");
            File.WriteAllText(dict, FuzzCorpus.TextDictionary());
            input = Path.Combine(o.OutDir, "seeds-text");
            FuzzCorpus.Write(input, FuzzCorpus.TextSeeds(FuzzCorpus.KmemFiles(o.ExampleDirs), FuzzCorpus.DefaultGenerated, FuzzCorpus.DefaultSeed));
        }
        else
        {
            dict = Path.Combine(o.OutDir, "kmem.dict");
            File.WriteAllText(dict, FuzzCorpus.BinaryDictionary());
            input = o.SeedsDir;
            if (input is null)
            {
                input = Path.Combine(o.OutDir, "seeds");
                FuzzCorpus.Write(input, FuzzCorpus.BinarySeeds(FuzzCorpus.KmemFiles(o.ExampleDirs), FuzzCorpus.DefaultGenerated, FuzzCorpus.DefaultSeed));
            }
        }
        if (!Directory.Exists(input) || Directory.GetFiles(input).Length == 0)
            return (null, $"no seeds in {input}");
        return (Path.GetFullPath(input), Path.GetFullPath(dict));
    }

    private Process Start(string name, IReadOnlyList<string> aflArgs, IReadOnlyDictionary<string, string> env)
    {
        string logFile = Path.Combine(logs, name + ".log");
        File.AppendAllText(logFile, $"==== {DateTimeOffset.Now:u} {o.AflFuzz} {string.Join(' ', aflArgs)}\n");
        // Through `sh -c exec`, so that the process we hold is afl-fuzz itself, its output goes to the
        // log without a pipe that dies with us, and (when setpriv is there) it gets SIGTERM if this
        // process is killed: a SIGKILLed campaign leaves no orphan fuzzers behind, only its files.
        string setpriv = File.Exists("/usr/bin/setpriv") ? "/usr/bin/setpriv --pdeathsig TERM -- " : "";
        string cmd = $"exec {setpriv}{Quote(o.AflFuzz)} {string.Join(' ', aflArgs.Select(Quote))} >> {Quote(logFile)} 2>&1";
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(cmd);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        return Process.Start(psi) ?? throw new InvalidOperationException("could not start afl-fuzz");
    }

    public const int MaxRestarts = 20;
    // Near the end an instance that stops is let go (AFL++'s own -V ends them about then anyway).
    private static readonly TimeSpan SuperviseUntilEnd = TimeSpan.FromSeconds(15);
    private readonly Dictionary<string, int> restarts = [];

    /// <summary>
    /// An instance that ended before the campaign's time is up lost its fork server: in persistent
    /// mode an input that overflows the stack or outlives -t takes the harness process down, and
    /// AFL++ aborts ("Unable to communicate with fork server"). Save the input it was running
    /// (INSTANCE/.cur_input) to hangs/ and restart the instance in place (-i -), up to
    /// <see cref="MaxRestarts"/> times each. Out-of-process mode does not need this.
    /// </summary>
    private void Supervise(string dict)
    {
        if (o.Duration is { } full && clock.Elapsed > full - SuperviseUntilEnd) return;
        for (int i = 0; i < instances.Count; i++)
        {
            var (name, p) = instances[i];
            if (!p.HasExited) continue;
            int n = restarts.GetValueOrDefault(name);
            // Only an instance that got past its start-up (it wrote fuzzer_stats): one that cannot
            // start at all (bad seeds, a broken harness) would fail the same way again.
            if (n >= MaxRestarts || !File.Exists(Path.Combine(sync, name, "fuzzer_stats"))) continue;
            restarts[name] = n + 1;
            string cur = Path.Combine(sync, name, ".cur_input");
            string saved = "";
            if (File.Exists(cur))
            {
                byte[] input = File.ReadAllBytes(cur);
                string key = $"{name}\thang\t{Convert.ToHexString(SHA256.HashData(input))[..24]}";
                if (processed.Add(key))
                {
                    hangCount++;
                    saved = triage.SaveHang(input, $"{name}-killer{n + 1}", $"{name}/.cur_input (the input running when the fork server died)", hangs, o.TimeoutMs);
                    File.AppendAllText(triageLog, $"{key}\tHang\t\t{saved}\n");
                }
            }
            log.WriteLine($"afl-fuzz instance {name} stopped (code {p.ExitCode}) at {FormatSpan(clock.Elapsed)}: " +
                          $"{AbortLine(Path.Combine(logs, name + ".log"))}; {(saved.Length > 0 ? $"its input saved to {saved}; " : "")}" +
                          $"restarting it (restart {n + 1} of at most {MaxRestarts})");
            var env = new Dictionary<string, string>(AflEnvironment()) { ["AFL_AUTORESUME"] = "1" };
            var args = AflArgs(name, i == 0, "-", dict, o.Duration is { } d ? d - clock.Elapsed : null);
            instances[i] = (name, Start(name, args, env));
        }
    }

    private void Stop()
    {
        foreach (var (_, p) in instances)
        {
            if (p.HasExited) continue;
            // SIGINT: afl-fuzz writes its stats and queue state and exits cleanly.
            try { using var k = Process.Start("kill", ["-INT", p.Id.ToString(CultureInfo.InvariantCulture)]); k?.WaitForExit(); }
            catch (System.ComponentModel.Win32Exception) { }
        }
        var deadline = Stopwatch.StartNew();
        foreach (var (_, p) in instances)
        {
            var left = TimeSpan.FromSeconds(20) - deadline.Elapsed;
            if (left < TimeSpan.Zero || !p.WaitForExit(left))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                p.WaitForExit();
            }
        }
    }

    // ------------------------------------------------------------------ triage

    private IEnumerable<string> InstanceDirs() =>
        Directory.Exists(sync) ? Directory.GetDirectories(sync).Order(StringComparer.Ordinal) : [];

    private void Scan()
    {
        // Every instance in the sync folder, including secondaries other hosts run (fuzz/cluster.sh).
        foreach (string dir in InstanceDirs())
        {
            string inst = Path.GetFileName(dir);
            foreach (string rel in AflStats.Inputs(dir, "crashes"))
                Handle(dir, inst, rel, crash: true);
            foreach (string rel in AflStats.Inputs(dir, "hangs"))
                Handle(dir, inst, rel, crash: false);
        }
    }

    private void Handle(string dir, string inst, string rel, bool crash, bool quietUnreproduced = false)
    {
        byte[] input;
        try { input = File.ReadAllBytes(Path.Combine(dir, rel)); }
        catch (IOException) { return; }
        // Keyed by content: AFL++ renames crashes/ to crashes.DATE on an in-place resume.
        string key = $"{inst}\t{(crash ? "crash" : "hang")}\t{Convert.ToHexString(SHA256.HashData(input))[..24]}";
        if (processed.Contains(key)) return;
        string origin = $"{inst}/{rel}";
        string fileName = Path.GetFileName(rel);
        string id = fileName.Split(',')[0].Replace(":", "", StringComparison.Ordinal);
        string record;
        if (crash)
        {
            var r = RunTriage(input, origin);
            switch (r.Kind)
            {
                case TriageKind.New:
                    newFindings++;
                    if (r.OnReference is null or "ok")
                    {
                        ownFindings++;
                        firstOwnFinding ??= clock.Elapsed;
                    }
                    firstFinding ??= clock.Elapsed;
                    log.Write(FindingText(r, clock.Elapsed, AflStats.TimeField(fileName), inst, o.Harness));
                    break;
                case TriageKind.Duplicate:
                    duplicates++;
                    break;
                case TriageKind.Unreproduced when quietUnreproduced:
                    break; // a seed that holds: the normal case
                default:
                    unreproducedCount++;
                    Directory.CreateDirectory(unreproduced);
                    string stem = Path.Combine(unreproduced, $"{inst}-{id}");
                    File.WriteAllBytes(stem + ".input", input);
                    File.WriteAllText(stem + ".txt", $"AFL++ saved {origin} as a crash; the in-process replay says: {r.Signature}: {r.Verdict}\n" +
                        $"Replay with the instrumented harness: dotnet fuzz/build/Kmem.Fuzz.dll {string.Join(' ', o.Harness.ToArgs())} < {stem}.input\n");
                    log.WriteLine($"unreproduced crash {origin} ({r.Signature}): saved to {stem}.input");
                    break;
            }
            record = $"{key}\t{r.Kind}\t{r.Signature}\t{r.Path ?? ""}";
        }
        else
        {
            hangCount++;
            string path = triage.SaveHang(input, $"{inst}-{id}", origin, hangs, o.TimeoutMs);
            log.WriteLine($"hang {origin}: saved to {path}");
            record = $"{key}\tHang\t\t{path}";
        }
        processed.Add(key);
        File.AppendAllText(triageLog, record + "\n");
    }

    /// <summary>
    /// The lines a new finding writes to the log: the FINDING line, the verdict, the reference's
    /// answer, where it was written. `kmem-verify bench --engine fuzz` reads them back (FindingLog),
    /// and its tests parse what this writes, so the two cannot drift apart.
    /// </summary>
    public static string FindingText(TriageResult r, TimeSpan at, long? aflMs, string instance, HarnessOptions harness)
    {
        // Invariant culture: FindingLog reads the seconds with a '.'.
        var w = new StringWriter(CultureInfo.InvariantCulture);
        string afl = aflMs is long ms ? string.Create(CultureInfo.InvariantCulture, $", AFL++ found it {ms / 1000.0:0.0} s into {instance}'s run") : "";
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FINDING [{r.Signature}] at {FormatSpan(at)}{afl}: shrunk from {r.OriginalOps} to {r.ShrunkOps} " +
                    $"{(harness.Kind == HarnessKind.Parser ? "bytes" : "operations")} ({r.ShrunkBytes} bytes) in {r.Elapsed.TotalSeconds:0.0} s"));
        w.WriteLine($"  {r.Verdict}");
        if (r.OnReference is { } onRef)
            w.WriteLine(onRef == "ok" ? "  holds on the reference: the target's own bug" : $"  fails on the reference too ({onRef}): not the target's own bug");
        w.WriteLine(harness.Kind == HarnessKind.Parser
            ? $"  written to {r.Path}; replay with: dotnet fuzz/build/Kmem.Fuzz.dll parser < {Path.ChangeExtension(r.Path!, ".input")}"
            : $"  written to {r.Path}; replay with: kmem-verify replay {r.Path} --target {harness.Target}");
        return w.ToString();
    }

    private TriageResult RunTriage(byte[] input, string origin)
    {
        // On a thread with a large stack: a deep input must not take the campaign down with it.
        TriageResult? result = null;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try { result = triage.Process(input, origin); }
            catch (Exception e) { error = e; }
        }, 256 * 1024 * 1024);
        t.Start();
        t.Join();
        if (error is not null)
            return new TriageResult(TriageKind.Unreproduced, "triage-error/" + error.GetType().Name, error.Message, null, 0, 0, 0, TimeSpan.Zero);
        return result!;
    }

    private IEnumerable<string> ReadTriageLog()
    {
        if (!File.Exists(triageLog)) yield break;
        foreach (string line in File.ReadAllLines(triageLog))
        {
            var f = line.Split('\t');
            if (f.Length < 4) continue;
            processed.Add($"{f[0]}\t{f[1]}\t{f[2]}");
            if (f.Length >= 5 && f[3] == nameof(TriageKind.New)) yield return f[4];
        }
    }

    // ------------------------------------------------------------------ status

    public string Status()
    {
        var stats = InstanceDirs().Select(AflStats.Read).ToList();
        var now = DateTimeOffset.UtcNow;
        var sb = new StringBuilder();
        var updated = stats.Where(s => s.LastUpdate is not null).Select(s => s.LastUpdate!.Value).DefaultIfEmpty().Min();
        string age = updated == default ? "no AFL++ stats yet" : $"AFL++ stats {FormatSpan(now - updated)} old";
        sb.Append(CultureInfo.InvariantCulture, $"[{FormatSpan(clock.Elapsed)}] execs {stats.Sum(s => s.ExecsDone):N0} ({age}; ");
        sb.Append(string.Join(", ", stats.Select(s => string.Create(CultureInfo.InvariantCulture,
            $"{s.Name} {s.ExecsPerSecRecent:0}/s{(s.Stability is double st ? $" stab {st:0.0}%" : "")}"))));
        // Instances import each other's queues: the largest queue is the campaign's corpus.
        sb.Append(CultureInfo.InvariantCulture, $") corpus {stats.Select(s => s.Corpus).DefaultIfEmpty().Max()} crashes {stats.Sum(s => s.Crashes)} ");
        sb.Append(CultureInfo.InvariantCulture, $"findings {triage.KnownSignatures.Count}");
        if (triage.KnownSignatures.Count > 0) sb.Append(" [").Append(string.Join(", ", triage.KnownSignatures.Order(StringComparer.Ordinal))).Append(']');
        sb.Append(CultureInfo.InvariantCulture, $" hangs {stats.Sum(s => s.Hangs)}");
        var last = stats.Where(s => s.LastFind is not null).Select(s => s.LastFind!.Value).DefaultIfEmpty().Max();
        sb.Append(last == default ? " last new path: none yet" : $" last new path {FormatSpan(now - last)} ago");
        return sb.ToString();
    }

    public static string FormatSpan(TimeSpan t)
    {
        if (t < TimeSpan.Zero) t = TimeSpan.Zero;
        return t.TotalHours >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}h{t.Minutes:D2}m{t.Seconds:D2}s")
            : t.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{t.Minutes}m{t.Seconds:D2}s")
            : string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:0.0}s");
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string AbortLine(string file)
    {
        var tail = Tail(file, 12).Split('\n');
        return (tail.LastOrDefault(l => l.Contains("ABORT", StringComparison.Ordinal)) ?? tail.LastOrDefault() ?? "").Trim();
    }

    private static string Tail(string file, int lines)
    {
        if (!File.Exists(file)) return "(no log)";
        var all = File.ReadAllLines(file)
            .Select(l => System.Text.RegularExpressions.Regex.Replace(l, @"\x1b(\[[0-9;?]*[A-Za-z]|\(B)", ""))
            .Where(l => l.Trim().Length > 0).ToArray();
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    /// <summary>Parses 90, 90s, 10m, 2h, 1h30m (no unit: seconds).</summary>
    public static bool TryParseDuration(string? text, out TimeSpan span)
    {
        span = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text)) return false;
        if (TimeSpan.TryParseExact(text, @"h\:mm\:ss", CultureInfo.InvariantCulture, out span)) return span > TimeSpan.Zero;
        double total = 0;
        int i = 0;
        text = text.Trim().ToLowerInvariant();
        while (i < text.Length)
        {
            int start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.')) i++;
            if (start == i || !double.TryParse(text.AsSpan(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) return false;
            double unit = 1;
            if (i < text.Length)
            {
                unit = text[i] switch { 's' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400, _ => -1 };
                if (unit < 0) return false;
                i++;
            }
            total += v * unit;
        }
        span = TimeSpan.FromSeconds(total);
        return total > 0;
    }
}
