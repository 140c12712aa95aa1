using Xunit;

namespace Kmem.Properties;

/// <summary>Hand-written examples reproduce Linux outcomes; every regression fails on its target and holds on the reference.</summary>
public class CorpusTests
{
    public static IEnumerable<object[]> Examples => Corpus.Files("examples");
    public static IEnumerable<object[]> Regressions => Corpus.Files("regressions");

    [Theory]
    [MemberData(nameof(Examples))]
    public void Example_holds_on_the_reference(string file)
    {
        var s = Corpus.Load("examples", file);
        Assert.Contains(s.Ops, op => op.Expected is not null || op.Kind == Kmem.Scenarios.OpKind.Expect);
        var v = Corpus.Run(s);
        Assert.True(v.Ok, v.ToString());
    }

    [Theory]
    [MemberData(nameof(Regressions))]
    public void Regression_fails_on_its_target_with_its_signature_and_holds_on_the_reference(string file)
    {
        var s = Corpus.Load("regressions", file);
        string? target = Corpus.HeaderValue(s, "target");
        string? signature = Corpus.HeaderValue(s, "signature");
        Assert.NotNull(target);
        if (target != "none" && target != "reference")
        {
            Assert.NotNull(signature);
            var bad = Corpus.Run(s, target!);
            Assert.False(bad.Ok, $"{file} no longer fails on {target}");
            Assert.Equal(signature, bad.Signature);
        }
        var good = Corpus.Run(s);
        Assert.True(good.Ok, $"{file} fails on the reference: {good}");
    }
}
