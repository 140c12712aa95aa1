using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;
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

    /// <summary>
    /// Besides failing with its signature, a regression replays the message of its `# verdict:` line
    /// word for word: the model writes its messages only when a verdict is a violation (LazyText,
    /// Call), and this is what proves they still come out, with the call's arguments in their places.
    /// </summary>
    [Theory]
    [MemberData(nameof(Regressions))]
    public void Regression_fails_on_its_target_with_its_signature_and_message_and_holds_on_the_reference(string file)
    {
        var s = Corpus.Load("regressions", file);
        string? target = Corpus.HeaderValue(s, "target");
        string? signature = Corpus.HeaderValue(s, "signature");
        Assert.NotNull(target);
        if (target != "none" && target != "reference")   // model regressions hold everywhere: no message
        {
            Assert.NotNull(signature);
            string? recorded = Corpus.HeaderValue(s, "verdict");
            Assert.NotNull(recorded);
            var bad = Corpus.Run(s, target!);
            Assert.False(bad.Ok, $"{file} no longer fails on {target}");
            Assert.Equal(signature, bad.Signature);
            Assert.EndsWith($"{bad.Operation}: {bad.Message}", recorded);
        }
        var good = Corpus.Run(s);
        Assert.True(good.Ok, $"{file} fails on the reference: {good}");
    }

    [Fact]
    public void A_refusal_message_names_the_call_its_arguments_and_the_limit()
    {
        var s = ScenarioParser.Parse("profile linux-2.0-i386\nram 16M\np0 = kmalloc 131049\n", "t.kmem");
        var v = ScenarioRunner.Run(s, TargetRegistry.Get("buggy:kmalloc-limit-plus-page")!.Create);
        Assert.Equal("limits/kmalloc", v.Signature);
        Assert.Equal("kmalloc(131049, Kernel): 131049 is above KMALLOC_MAX_SIZE 131048: must give EINVAL; the target answered Ok", v.Message);
    }
}
