using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

namespace Kmem.Properties;

/// <summary>
/// FsCheck properties: the reference allocator upholds every invariant of the model on generated
/// scenarios, per profile. A failure is shrunk by the project's shrinker and reported as `.kmem` text.
/// </summary>
public class InvariantProperties
{
    private static Property Holds(string profile) =>
        Prop.ForAll(Arb.From(ScenarioGen.Scenario(new GenOptions { Profile = profile })), s =>
        {
            var create = TargetRegistry.Get("reference")!.Create;
            var v = ScenarioRunner.Run(s, create);
            if (!v.Ok)
            {
                var shrunk = new Shrinker(x => ScenarioRunner.Run(x, create), v).Minimize(s);
                throw new Xunit.Sdk.XunitException($"{shrunk.Verdict}\n--- minimal scenario ---\n{ScenarioPrinter.Print(shrunk.Scenario)}");
            }
            return true;
        });

    [Property(MaxTest = 300)] public Property Reference_upholds_every_invariant_on_6_8() => Holds("linux-6.8-x86_64");
    [Property(MaxTest = 300)] public Property Reference_upholds_every_invariant_on_4_19() => Holds("linux-4.19-x86_64");
    [Property(MaxTest = 300)] public Property Reference_upholds_every_invariant_on_2_6_18() => Holds("linux-2.6.18-i386");
    [Property(MaxTest = 300)] public Property Reference_upholds_every_invariant_on_2_0() => Holds("linux-2.0-i386");

    /// <summary>The shrinker is deterministic and keeps the signature, on any failing generated case.</summary>
    [Property(MaxTest = 30)]
    public Property Shrinking_is_deterministic_and_keeps_the_signature() =>
        Prop.ForAll(Arb.From(ScenarioGen.Scenario(new GenOptions { Profile = "linux-4.19-x86_64" })), s =>
        {
            var create = TargetRegistry.Get("buggy:no-upper-coalesce")!.Create;
            var v = ScenarioRunner.Run(s, create);
            if (v.Ok) return true;
            var a = new Shrinker(x => ScenarioRunner.Run(x, create), v).Minimize(s);
            var b = new Shrinker(x => ScenarioRunner.Run(x, create), v).Minimize(s);
            return ScenarioPrinter.Print(a.Scenario) == ScenarioPrinter.Print(b.Scenario)
                && a.Verdict.Signature == v.Signature
                && ScenarioRunner.Run(a.Scenario, create).Signature == v.Signature
                && a.Scenario.Ops.Count <= s.Ops.Count;
        });

    /// <summary>Generation from a seed is reproducible: the printed seed reproduces the run.</summary>
    [Property(MaxTest = 50)]
    public bool The_same_seed_generates_the_same_scenario(ulong seed, byte i) =>
        ScenarioPrinter.Print(CheckEngine.Generate(new GenOptions(), seed, i, 100))
        == ScenarioPrinter.Print(CheckEngine.Generate(new GenOptions(), seed, i, 100));
}
