using System.Diagnostics;
using System.Globalization;
using System.Text;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Engines.Fuzzing;

public enum TriageKind
{
    /// <summary>A signature not seen before: shrunk and written to the findings folder.</summary>
    New,
    /// <summary>A signature already on disk: counted, not written again.</summary>
    Duplicate,
    /// <summary>AFL++ saw a crash that the uninstrumented in-process replay does not reproduce.</summary>
    Unreproduced,
}

/// <param name="Path">The finding's `.kmem` (new findings), or null.</param>
/// <param name="OriginalOps">Operations of the decoded input (bytes for the parser harness).</param>
/// <param name="ShrunkOps">Operations after shrinking (bytes for the parser harness).</param>
/// <param name="ShrunkBytes">Size of the written finding file.</param>
public sealed record TriageResult(
    TriageKind Kind, string Signature, string Verdict, string? Path, int OriginalOps, int ShrunkOps, int ShrunkBytes, TimeSpan Elapsed)
{
    /// <summary>
    /// For a target other than the reference: the shrunk finding's signature on the reference
    /// (`ok` when it holds there, so the bug is the target's own); null when not checked.
    /// </summary>
    public string? OnReference { get; init; }
}

/// <summary>
/// Crash triage for a campaign: replays a saved AFL++ input through the uninstrumented runner
/// in-process, deduplicates by failure signature, shrinks a new one with the common
/// <see cref="Shrinker"/> and writes it as a `.kmem` finding (plus the raw input beside it, with
/// the extension `.input`) before the caller reports it.
/// </summary>
public sealed class CrashTriage
{
    private readonly HarnessOptions options;
    private readonly Func<ITarget> target;
    private readonly Func<string, string, string> writeFinding;
    private readonly HashSet<string> known;
    private readonly string tool;

    /// <summary>
    /// The reference allocator, to replay every finding of another target against (a differential
    /// check: a finding that fails on the reference too is not the target's own bug).
    /// </summary>
    public Func<ITarget>? Reference { get; init; }

    /// <param name="writeFinding">(signature, text) -> path: writes a finding completely and returns where.</param>
    /// <param name="knownSignatures">Signatures already found (read back from disk on --resume).</param>
    public CrashTriage(HarnessOptions options, Func<ITarget> target, Func<string, string, string> writeFinding,
        IEnumerable<string>? knownSignatures = null, string tool = "kmem-verify")
    {
        this.options = options;
        this.target = target;
        this.writeFinding = writeFinding;
        known = new HashSet<string>(knownSignatures ?? [], StringComparer.Ordinal);
        this.tool = tool;
    }

    public IReadOnlyCollection<string> KnownSignatures => known;

    /// <summary>Triage one crashing input; <paramref name="origin"/> names it in the finding's header.</summary>
    public TriageResult Process(byte[] input, string origin)
    {
        var clock = Stopwatch.StartNew();
        return options.Kind == HarnessKind.Parser ? ProcessText(input, origin, clock) : ProcessScenario(input, origin, clock);
    }

    private TriageResult ProcessScenario(byte[] input, string origin, Stopwatch clock)
    {
        var s = ScenarioHarness.Decode(input, options);
        Verdict v;
        try { v = ScenarioHarness.Evaluate(s, target); }
        catch (UnsupportedScenarioException e)
        {
            return new TriageResult(TriageKind.Unreproduced, "unsupported", e.Message, null, s.Ops.Count, s.Ops.Count, 0, clock.Elapsed);
        }
        if (v.Ok)
            return new TriageResult(TriageKind.Unreproduced, "ok", v.ToString(), null, s.Ops.Count, s.Ops.Count, 0, clock.Elapsed);
        if (known.Contains(v.Signature))
            return new TriageResult(TriageKind.Duplicate, v.Signature, v.ToString(), null, s.Ops.Count, s.Ops.Count, 0, clock.Elapsed);

        var shrunk = new Shrinker(x => ScenarioHarness.Evaluate(x, target), v).Minimize(s);
        string? onReference = null;
        string Annotated(Scenario x, Verdict xv, string how)
        {
            onReference = OnReference(x);
            var comments = new List<string>
            {
                $"found by: kmem-verify fuzz --target {options.Target} --profile {options.Profile ?? "any"} --ops {HarnessOptions.OpsName(options.Ops)} (AFL++ input {origin})",
                $"target: {options.Target}",
                $"signature: {xv.Signature}",
                $"verdict: {xv}",
                how,
            };
            if (onReference is not null)
                comments.Add(onReference == "ok" ? "on the reference: holds" : $"on the reference: fails too ({onReference}): not this target's own bug");
            return ScenarioPrinter.Print(x with { Header = x.Header with { Comments = comments } });
        }
        string text = Annotated(shrunk.Scenario, shrunk.Verdict, $"shrunk from {s.Ops.Count} to {shrunk.Scenario.Ops.Count} operations by {tool}");
        // The finding must replay from its text: the shrinker works on scenarios, and could reach
        // one the parser refuses (a boot parameter moved past a limit). Then keep the input as decoded.
        if (!ReplaysAs(text, v.Signature))
        {
            text = Annotated(s, v, $"not shrunk: the shrunk form ({shrunk.Scenario.Ops.Count} operations) does not replay from its text with this signature");
            shrunk = shrunk with { Scenario = s, Verdict = v };
        }
        string path = Write(v.Signature, text, input);
        return new TriageResult(TriageKind.New, v.Signature, shrunk.Verdict.ToString(), path, s.Ops.Count,
            shrunk.Scenario.Ops.Count, Encoding.UTF8.GetByteCount(text), clock.Elapsed) { OnReference = onReference };
    }

    private string? OnReference(Scenario s)
    {
        if (Reference is null || options.Target == "reference") return null;
        try { return ScenarioHarness.Evaluate(s, Reference).Signature; }
        catch (UnsupportedScenarioException) { return "unsupported"; }
    }

    private bool ReplaysAs(string text, string signature)
    {
        try { return ScenarioHarness.Evaluate(ScenarioParser.Parse(text), target).Signature == signature; }
        catch (ScenarioException) { return false; }
        catch (UnsupportedScenarioException) { return false; }
    }

    private TriageResult ProcessText(byte[] input, string origin, Stopwatch clock)
    {
        string sig = ParserHarness.Signature(input);
        if (sig == "ok")
            return new TriageResult(TriageKind.Unreproduced, "ok", "parses and round-trips", null, input.Length, input.Length, 0, clock.Elapsed);
        if (known.Contains(sig))
            return new TriageResult(TriageKind.Duplicate, sig, sig, null, input.Length, input.Length, 0, clock.Elapsed);
        byte[] small = MinimizeBytes(input, b => ParserHarness.Signature(b) == sig);
        string text = Encoding.UTF8.GetString(small);
        string path = Write(sig, text, input);
        return new TriageResult(TriageKind.New, sig, $"{sig} (from AFL++ input {origin})", path, input.Length, small.Length,
            Encoding.UTF8.GetByteCount(text), clock.Elapsed);
    }

    private string Write(string signature, string text, byte[] input)
    {
        string path = writeFinding(signature, text);
        string raw = Path.ChangeExtension(path, ".input");
        if (!File.Exists(raw))
        {
            File.WriteAllBytes(raw + ".tmp", input);
            File.Move(raw + ".tmp", raw, overwrite: true);
        }
        known.Add(signature);
        return path;
    }

    /// <summary>Delta debugging over bytes: remove chunks, halving down to one byte, while the predicate holds.</summary>
    public static byte[] MinimizeBytes(byte[] input, Func<byte[], bool> stillFails, int maxAttempts = 20_000)
    {
        var cur = input;
        int attempts = 0;
        bool progress = true;
        while (progress && attempts < maxAttempts)
        {
            progress = false;
            for (int chunk = Math.Max(1, cur.Length / 2); chunk >= 1 && attempts < maxAttempts; chunk /= 2)
            {
                for (int start = 0; start < cur.Length && attempts < maxAttempts;)
                {
                    int len = Math.Min(chunk, cur.Length - start);
                    var candidate = new byte[cur.Length - len];
                    Array.Copy(cur, 0, candidate, 0, start);
                    Array.Copy(cur, start + len, candidate, start, cur.Length - start - len);
                    attempts++;
                    if (stillFails(candidate)) { cur = candidate; progress = true; }
                    else start += chunk;
                }
            }
        }
        return cur;
    }

    /// <summary>
    /// Saves an input AFL++ timed out on to <paramref name="dir"/>, with a note on how to replay it:
    /// for the scenario harness the decoded `.kmem` (never run here: it may not end), for the parser
    /// harness the text; the raw bytes always, as NAME.input.
    /// </summary>
    public string SaveHang(byte[] input, string name, string origin, string dir, int timeoutMs)
    {
        Directory.CreateDirectory(dir);
        string stem = Path.Combine(dir, name);
        File.WriteAllBytes(stem + ".input", input);
        string note = string.Create(CultureInfo.InvariantCulture,
            $"AFL++ input {origin} ran longer than the campaign's -t {timeoutMs} ms. Not replayed by the campaign.");
        if (options.Kind == HarnessKind.Parser)
        {
            File.WriteAllText(stem + ".txt",
                note + "\nReplay: dotnet fuzz/build/Kmem.Fuzz.dll parser < " + stem + ".input   (or: time kmem-verify replay " + stem + ".input)\n");
            return stem + ".input";
        }
        var s = ScenarioHarness.Decode(input, options);
        var annotated = s with
        {
            Header = s.Header with
            {
                Comments =
                [
                    note,
                    $"target: {options.Target}",
                    $"replay: time kmem-verify replay {stem}.kmem --target {options.Target}",
                    $"or with the instrumented harness: dotnet fuzz/build/Kmem.Fuzz.dll {string.Join(' ', options.ToArgs())} < {stem}.input",
                ],
            },
        };
        File.WriteAllText(stem + ".kmem", ScenarioPrinter.Print(annotated));
        return stem + ".kmem";
    }

    /// <summary>The `# signature:` of every `.kmem` finding in a folder (what a resumed campaign already has).</summary>
    public static IEnumerable<string> SignaturesOnDisk(string findingsDir)
    {
        if (!Directory.Exists(findingsDir)) yield break;
        foreach (string f in Directory.EnumerateFiles(findingsDir, "*.kmem"))
        {
            foreach (string line in File.ReadLines(f))
            {
                if (!line.StartsWith('#')) break;
                string t = line.TrimStart('#').Trim();
                if (t.StartsWith("signature:", StringComparison.Ordinal))
                {
                    yield return t["signature:".Length..].Trim();
                    break;
                }
            }
        }
    }
}
