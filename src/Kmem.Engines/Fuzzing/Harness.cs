using System.Globalization;
using System.Text;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Engines.Fuzzing;

/// <summary>Which harness AFL++ drives.</summary>
public enum HarnessKind
{
    /// <summary>bytes -> BinaryCodec.Decode -> ScenarioRunner against a target: a violation is a crash.</summary>
    Scenario,
    /// <summary>bytes -> UTF-8 text -> ScenarioParser.Parse: anything but ScenarioException is a crash.</summary>
    Parser,
}

/// <summary>Which decoded operations the scenario harness keeps.</summary>
public enum OpFilter
{
    /// <summary>Every operation the decoder produces.</summary>
    All,
    /// <summary>Only memblock and the buddy allocator (plus context and meminfo); the rest is dropped.</summary>
    Buddy,
}

/// <summary>How SharpFuzz runs the harness.</summary>
public enum HarnessMode
{
    /// <summary><c>Fuzzer.Run</c>: the fastest; a stack overflow or a hang ends the process.</summary>
    Persistent,
    /// <summary><c>Fuzzer.OutOfProcess.Run</c>: slower, survives stack overflows and hangs.</summary>
    OutOfProcess,
    /// <summary><c>Fuzzer.LibFuzzer.Run</c>, driven by libfuzzer-dotnet (OSS-Fuzz, ClusterFuzzLite).</summary>
    LibFuzzer,
}

/// <summary>
/// Everything that decides what one harness execution does. The harness process and the CLI's
/// triage build the same options from the same arguments, so a crash replays in-process exactly as
/// AFL++ ran it.
/// </summary>
public sealed record HarnessOptions
{
    public HarnessKind Kind { get; init; } = HarnessKind.Scenario;
    /// <summary>`reference` or `buggy:NAME` (scenario harness only).</summary>
    public string Target { get; init; } = "reference";
    /// <summary>
    /// Forces every input onto this profile (the input's profile byte is overwritten before
    /// decoding); null lets each input choose its profile, as the codec does.
    /// </summary>
    public string? Profile { get; init; }
    public OpFilter Ops { get; init; } = OpFilter.All;
    /// <summary>Out-of-process by default: an input that outlives afl-fuzz's -t, or overflows the stack, must not end the campaign.</summary>
    public HarnessMode Mode { get; init; } = HarnessMode.OutOfProcess;

    public const string Usage =
        "usage: Kmem.Fuzz scenario|parser [--target T] [--profile P|any] [--ops all|buddy] [--mode persistent|out-of-process|libfuzzer]\n" +
        "       (environment fallbacks: KMEM_FUZZ_HARNESS, KMEM_FUZZ_TARGET, KMEM_FUZZ_PROFILE, KMEM_FUZZ_OPS, KMEM_FUZZ_MODE)";

    /// <summary>The harness command line for these options (what afl-fuzz runs after the harness path).</summary>
    public IReadOnlyList<string> ToArgs()
    {
        var args = new List<string> { Kind == HarnessKind.Parser ? "parser" : "scenario" };
        if (Kind == HarnessKind.Scenario)
        {
            args.AddRange(["--target", Target, "--profile", Profile ?? "any", "--ops", OpsName(Ops)]);
        }
        args.AddRange(["--mode", ModeName(Mode)]);
        return args;
    }

    public static string OpsName(OpFilter f) => f == OpFilter.Buddy ? "buddy" : "all";

    public static string ModeName(HarnessMode m) => m switch
    {
        HarnessMode.OutOfProcess => "out-of-process",
        HarnessMode.LibFuzzer => "libfuzzer",
        _ => "persistent",
    };

    public static bool TryParseMode(string? s, out HarnessMode mode)
    {
        mode = s switch
        {
            "persistent" => HarnessMode.Persistent,
            "out-of-process" => HarnessMode.OutOfProcess,
            "libfuzzer" => HarnessMode.LibFuzzer,
            _ => (HarnessMode)(-1),
        };
        return (int)mode >= 0;
    }

    public static bool TryParseOps(string? s, out OpFilter ops)
    {
        ops = s switch { "all" => OpFilter.All, "buddy" => OpFilter.Buddy, _ => (OpFilter)(-1) };
        return (int)ops >= 0;
    }

    /// <summary>
    /// Parses the harness command line; an argument that is absent falls back to the environment
    /// variable (libfuzzer-dotnet passes at most one argument, so OSS-Fuzz wrappers use those).
    /// Throws <see cref="ArgumentException"/> with a usage message on anything unknown.
    /// <paramref name="checkProfile"/> false skips the profile name check, which runs code of
    /// Kmem.Scenarios: the harness must not call instrumented code before SharpFuzz is running
    /// (an instrumented assembly crashes outside Fuzzer.Run), so it lets the first input find out.
    /// </summary>
    public static HarnessOptions Parse(IReadOnlyList<string> args, Func<string, string?> env, bool checkProfile = true)
    {
        string? kind = null, target = null, profile = null, ops = null, mode = null;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{a} needs a value\n{Usage}");
            switch (a)
            {
                case "--target": target = Value(); break;
                case "--profile": profile = Value(); break;
                case "--ops": ops = Value(); break;
                case "--mode": mode = Value(); break;
                case "scenario" or "parser" when kind is null: kind = a; break;
                default: throw new ArgumentException($"unexpected argument '{a}'\n{Usage}");
            }
        }
        kind ??= env("KMEM_FUZZ_HARNESS") ?? "scenario";
        target ??= env("KMEM_FUZZ_TARGET") ?? "reference";
        profile ??= env("KMEM_FUZZ_PROFILE") ?? "any";
        ops ??= env("KMEM_FUZZ_OPS") ?? "all";
        mode ??= env("KMEM_FUZZ_MODE") ?? "out-of-process";
        if (kind is not ("scenario" or "parser")) throw new ArgumentException($"unknown harness '{kind}'\n{Usage}");
        if (!TryParseOps(ops, out var o)) throw new ArgumentException($"unknown --ops '{ops}'\n{Usage}");
        if (!TryParseMode(mode, out var m)) throw new ArgumentException($"unknown --mode '{mode}'\n{Usage}");
        if (checkProfile && profile != "any" && Profiles.Get(profile) is null)
            throw new ArgumentException($"unknown profile '{profile}'; known: {string.Join(", ", Profiles.All.Select(p => p.Name))}, any");
        return new HarnessOptions
        {
            Kind = kind == "parser" ? HarnessKind.Parser : HarnessKind.Scenario,
            Target = target,
            Profile = profile == "any" ? null : profile,
            Ops = o,
            Mode = m,
        };
    }
}

/// <summary>
/// What a harness throws for a finding. Its message starts with the failure signature
/// (`invariant/operation`), so AFL++'s crash output and a piped replay both say which bug it is.
/// </summary>
public sealed class FuzzViolationException(string signature, string detail) : Exception($"{signature}: {detail}")
{
    public string Signature { get; } = signature;
}

/// <summary>The scenario harness: decoding under the harness options, and the check itself.</summary>
public static class ScenarioHarness
{
    /// <summary>The operations the buddy-only filter keeps.</summary>
    public static readonly IReadOnlySet<OpKind> BuddyKinds = new HashSet<OpKind>
    {
        OpKind.MemblockAlloc, OpKind.MemblockFree, OpKind.MemInit, OpKind.AllocPages, OpKind.FreePages,
        OpKind.Context, OpKind.Meminfo,
    };

    private static readonly Dictionary<string, byte> ProfileBytes = BuildProfileBytes();

    /// <summary>
    /// Decodes an input as the harness does: the profile override rewrites the input's first byte
    /// (the codec's profile byte) so decoding stays total and every other byte keeps its meaning;
    /// the buddy filter drops other operations and then any operation that referred to one of them.
    /// </summary>
    public static Scenario Decode(ReadOnlySpan<byte> data, HarnessOptions o)
    {
        Scenario s;
        if (o.Profile is { } p)
        {
            byte[] copy = data.Length == 0 ? new byte[1] : data.ToArray();
            copy[0] = ProfileByte(p);
            s = BinaryCodec.Decode(copy);
        }
        else
        {
            s = BinaryCodec.Decode(data);
        }
        if (o.Ops == OpFilter.Buddy && s.Ops.Any(op => !BuddyKinds.Contains(op.Kind)))
            s = Shrinker.Close(s with { Ops = s.Ops.Where(op => BuddyKinds.Contains(op.Kind)).ToList() });
        return s;
    }

    /// <summary>The codec's header byte that selects the named profile.</summary>
    public static byte ProfileByte(string profile) =>
        ProfileBytes.TryGetValue(profile, out byte b) ? b : throw new ArgumentException($"unknown profile '{profile}'");

    private static Dictionary<string, byte> BuildProfileBytes()
    {
        var map = new Dictionary<string, byte>();
        for (int i = 0; i < 256 && map.Count < Profiles.All.Count; i++)
            map.TryAdd(BinaryCodec.Decode([(byte)i]).ProfileName, (byte)i);
        return map;
    }

    /// <summary>
    /// One harness execution: decode, run against a fresh target, throw
    /// <see cref="FuzzViolationException"/> on a violation. An operation this build cannot run yet
    /// (<see cref="UnsupportedScenarioException"/>) is not a finding. Any other exception escapes:
    /// it is a crash of the checker itself.
    /// </summary>
    public static void Check(ReadOnlySpan<byte> data, HarnessOptions o, Func<ITarget> target)
    {
        var s = Decode(data, o);
        Verdict v;
        try { v = ScenarioRunner.Run(s, target); }
        catch (UnsupportedScenarioException) { return; }
        if (!v.Ok) throw new FuzzViolationException(v.Signature, v.ToString());
    }

    /// <summary>
    /// The runner as triage and the shrinker see it: a violation is a verdict, and so is an
    /// exception of the checker (invariant `crash`, operation = the exception type), so both kinds
    /// of crash are deduplicated and shrunk alike. Unsupported operations still throw.
    /// </summary>
    public static Verdict Evaluate(Scenario s, Func<ITarget> target)
    {
        try { return ScenarioRunner.Run(s, target); }
        catch (UnsupportedScenarioException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Which step threw is not known: Step is the last one, so that a shrinker that cuts a
            // scenario after its failing step never cuts the step that threw.
            return new Verdict { Invariant = "crash", Operation = e.GetType().Name, Message = e.Message, Step = s.Ops.Count };
        }
    }
}

/// <summary>
/// The input harness for the tool's own parser: any bytes, read as UTF-8, go to ScenarioParser.
/// A <see cref="ScenarioException"/> is the documented answer to bad input; anything else is a
/// crash. A scenario that parses must also round-trip: Print(Parse(Print(s))) == Print(s), as the
/// printer promises.
/// </summary>
public static class ParserHarness
{
    public const string FileName = "fuzz-input.kmem";

    public static void Check(ReadOnlySpan<byte> data)
    {
        string text = Encoding.UTF8.GetString(data);
        Scenario s;
        try { s = ScenarioParser.Parse(text, FileName); }
        catch (ScenarioException) { return; }
        string printed = ScenarioPrinter.Print(s);
        Scenario again;
        try { again = ScenarioParser.Parse(printed, "printed.kmem"); }
        catch (ScenarioException e)
        {
            throw new FuzzViolationException("roundtrip/parse", $"the printer wrote text the parser refuses: {e.Message}");
        }
        string printedAgain = ScenarioPrinter.Print(again);
        if (printedAgain != printed)
            throw new FuzzViolationException("roundtrip/print", $"printing the re-parsed scenario changed it: {FirstDifference(printed, printedAgain)}");
    }

    /// <summary>The signature of one execution: `ok`, the violation's signature, or `parser-crash/EXCEPTION`.</summary>
    public static string Signature(ReadOnlySpan<byte> data)
    {
        try
        {
            Check(data);
            return "ok";
        }
        catch (FuzzViolationException e) { return e.Signature; }
        catch (Exception e) when (e is not OutOfMemoryException) { return "parser-crash/" + e.GetType().Name; }
    }

    private static string FirstDifference(string a, string b)
    {
        var la = a.Split('\n');
        var lb = b.Split('\n');
        for (int i = 0; i < Math.Max(la.Length, lb.Length); i++)
        {
            string x = i < la.Length ? la[i] : "(none)", y = i < lb.Length ? lb[i] : "(none)";
            if (x != y) return string.Create(CultureInfo.InvariantCulture, $"line {i + 1}: '{x}' became '{y}'");
        }
        return "no line differs";
    }
}
