using Kmem.Engines;
using Kmem.Zoo;
using Xunit;

namespace Kmem.Properties;

/// <summary>
/// Each planted bug is found by `check` with its default case count and shrunk to its recorded
/// minimal number of operations, on several seeds. These are the tests that prove the checks bite.
/// </summary>
public class ZooTests
{
    public static IEnumerable<object[]> Bugs =>
        from t in KnownBugs.All from seed in new ulong[] { 1, 2, 3 } select new object[] { t.Name, seed };

    [Theory]
    [MemberData(nameof(Bugs))]
    public void Check_finds_the_planted_bug_and_shrinks_it_to_the_recorded_minimum(string name, ulong seed)
    {
        var info = TargetRegistry.Get(name)!;
        var report = CheckEngine.Run(new CheckOptions { Profile = info.Profile, Seed = seed, TargetName = name }, info.Create);
        Assert.NotNull(report.Failure);
        var shrunk = report.Failure!.Shrunk;
        Assert.True(shrunk.Scenario.Ops.Count <= 6, $"{name}: shrunk to {shrunk.Scenario.Ops.Count} operations");
        var minimum = info.Minimal.FirstOrDefault(m => m.Signature == shrunk.Verdict.Signature);
        Assert.True(minimum is not null, $"{name}: signature {shrunk.Verdict.Signature} has no recorded minimum");
        Assert.Equal(minimum!.Ops, shrunk.Scenario.Ops.Count);
        // The shrunk scenario still fails on the buggy target and holds on the reference.
        Assert.Equal(shrunk.Verdict.Signature, Corpus.Run(shrunk.Scenario, name).Signature);
        Assert.True(Corpus.Run(shrunk.Scenario).Ok);
    }

    [Fact]
    public void The_reference_passes_the_default_check_on_every_profile()
    {
        foreach (var p in Kmem.Scenarios.Profiles.All)
        {
            var report = CheckEngine.Run(new CheckOptions { Profile = p.Name, Seed = 7, Cases = 300 }, TargetRegistry.Get("reference")!.Create);
            Assert.True(report.Failure is null, $"{p.Name}: {report.Failure?.Shrunk.Verdict}");
            Assert.True(report.Operations > 300 * 5, $"{p.Name}: only {report.Operations} operations in 300 cases");
        }
    }

    [Fact]
    public void Every_buggy_target_names_its_bug_source_and_minimum()
    {
        Assert.Contains(TargetRegistry.All, t => t.Name == "reference" && t.Bug is null);
        foreach (var t in KnownBugs.All)
        {
            Assert.StartsWith("buggy:", t.Name);
            Assert.False(string.IsNullOrWhiteSpace(t.Bug));
            Assert.False(string.IsNullOrWhiteSpace(t.Source));
            Assert.NotEmpty(t.Minimal);
            Assert.All(t.Minimal, m => Assert.False(string.IsNullOrWhiteSpace(m.Why)));
            Assert.Equal(t.Name, t.Create().Name);
        }
    }
}
