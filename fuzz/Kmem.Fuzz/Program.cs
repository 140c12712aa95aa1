using Kmem.Engines.Fuzzing;
using Kmem.Target;
using Kmem.Zoo;
using SharpFuzz;

// The SharpFuzz harness. All logic lives in Kmem.Engines.Fuzzing (not instrumented), so the CLI's
// triage replays an input exactly as this process ran it. Outside afl-fuzz, Fuzzer.Run reads one
// input from stdin and runs it once: `dotnet Kmem.Fuzz.dll scenario --target T < crash`.
//
// Nothing from an instrumented assembly (Kmem.Scenarios, Kmem.Target, Kmem.Model, Kmem.Reference,
// Kmem.Zoo, Kmem.Runner) may run before Fuzzer.*.Run has set up the coverage map: instrumented code
// crashes outside it. So the target and the profile are resolved on the first input; the CLI checks
// both before it starts afl-fuzz.

HarnessOptions options;
try
{
    options = HarnessOptions.Parse(args, Environment.GetEnvironmentVariable, checkProfile: false);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"Kmem.Fuzz: {e.Message}");
    return 2;
}

Func<ITarget>? create = null;
Action<ReadOnlySpan<byte>> check = options.Kind == HarnessKind.Parser
    ? ParserHarness.Check
    : data => ScenarioHarness.Check(data, options, create ??= Resolve(options.Target));

switch (options.Mode)
{
    case HarnessMode.LibFuzzer:
        Fuzzer.LibFuzzer.Run(span => check(span));
        break;
    case HarnessMode.OutOfProcess:
        Fuzzer.OutOfProcess.Run(stream => check(ReadAll(stream)));
        break;
    default:
        Fuzzer.Run(stream => check(ReadAll(stream)));
        break;
}
return 0;

static Func<ITarget> Resolve(string name) =>
    TargetRegistry.Get(name)?.Create
    ?? throw new ArgumentException($"unknown target '{name}'; known: {string.Join(", ", TargetRegistry.All.Select(t => t.Name))}");

static byte[] ReadAll(Stream stream)
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    return ms.ToArray();
}
