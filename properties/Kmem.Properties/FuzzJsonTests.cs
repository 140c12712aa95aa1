using System.Text.Json;
using Kmem.Cli.Commands;
using Kmem.Engines.Fuzzing;
using Kmem.Zoo;
using Xunit;

namespace Kmem.Properties;

/// <summary>
/// `kmem-verify fuzz --json`: the per-finding verdict object and the summary object, built from a
/// finding file and a made-up campaign result (no campaign runs here: campaigns are benchmarks).
/// </summary>
public sealed class FuzzJsonTests
{
    private static readonly string Regression = Path.Combine(Corpus.Root, "corpus", "regressions", "no-upper-coalesce-coalescing-free_pages.kmem");

    [Fact]
    public void A_scenario_finding_is_a_verdict_object_replayed_on_its_target()
    {
        string text = File.ReadAllText(Regression);
        var info = TargetRegistry.Get("buggy:no-upper-coalesce")!;
        string line = FuzzCommand.FindingJson(info.Name, HarnessKind.Scenario, "coalescing/free_pages", "/x/findings/f.kmem", text, info.Create);
        Assert.DoesNotContain('\n', line);
        var doc = JsonDocument.Parse(line).RootElement;
        Assert.Equal("kmem-verify/verdict", doc.GetProperty("schema").GetString());
        Assert.Equal("fuzz", doc.GetProperty("command").GetString());
        Assert.False(doc.GetProperty("ok").GetBoolean());
        Assert.Equal("coalescing/free_pages", doc.GetProperty("signature").GetString());
        Assert.Equal("coalescing", doc.GetProperty("invariant").GetString());
        Assert.Equal(2, doc.GetProperty("step").GetInt32());
        Assert.Equal("linux-6.8-x86_64", doc.GetProperty("profile").GetString());
        Assert.Equal("/x/findings/f.kmem", doc.GetProperty("file").GetString());
        Assert.True(doc.GetProperty("explanation").GetArrayLength() > 0);
        Assert.Equal("scenario", doc.GetProperty("fuzz").GetProperty("harness").GetString());
    }

    [Fact]
    public void The_same_finding_on_the_reference_holds_and_says_so()
    {
        // The object is the replay's verdict, not a copy of the file's header: a finding that no longer
        // fails (a fixed target) shows ok.
        string text = File.ReadAllText(Regression);
        string line = FuzzCommand.FindingJson("reference", HarnessKind.Scenario, "coalescing/free_pages", "f.kmem", text, TargetRegistry.Get("reference")!.Create);
        var doc = JsonDocument.Parse(line).RootElement;
        Assert.True(doc.GetProperty("ok").GetBoolean());
        Assert.Equal("ok", doc.GetProperty("signature").GetString());
    }

    [Fact]
    public void A_parser_finding_carries_its_signature()
    {
        string line = FuzzCommand.FindingJson("parser", HarnessKind.Parser, "roundtrip/print", "p.kmem", "ram 1x\n", TargetRegistry.Get("reference")!.Create);
        var doc = JsonDocument.Parse(line).RootElement;
        Assert.Equal("roundtrip/print", doc.GetProperty("signature").GetString());
        Assert.Equal("roundtrip", doc.GetProperty("invariant").GetString());
        Assert.Equal("print", doc.GetProperty("operation").GetString());
        Assert.False(doc.GetProperty("ok").GetBoolean());
        Assert.Equal("any", doc.GetProperty("profile").GetString());
        Assert.Equal("ram 1x\n", doc.GetProperty("scenario").GetString());
        Assert.Equal("parser", doc.GetProperty("fuzz").GetProperty("harness").GetString());
    }

    [Fact]
    public void The_summary_has_the_campaign_figures()
    {
        var result = new CampaignResult
        {
            NewFindings = 2, Signatures = ["a/b", "c/d"], Duplicates = 5, Hangs = 1, Elapsed = TimeSpan.FromSeconds(61.5),
            FirstFinding = TimeSpan.FromSeconds(3), Instances = [new AflInstanceStats("main") { ExecsDone = 1000, ExecsPerSec = 16.4, Corpus = 40, Stability = 99.5 }],
        };
        var h = HarnessOptions.Parse(["scenario", "--target", "reference"], _ => null);
        var doc = JsonDocument.Parse(FuzzCommand.SummaryJson(result, h, "reference", "afl-out", interrupted: true)).RootElement;
        Assert.Equal("kmem-verify/fuzz-summary", doc.GetProperty("schema").GetString());
        Assert.True(doc.GetProperty("interrupted").GetBoolean());
        Assert.Equal(2, doc.GetProperty("newFindings").GetInt32());
        Assert.Equal(2, doc.GetProperty("signatures").GetArrayLength());
        Assert.Equal(3.0, doc.GetProperty("firstFindingSeconds").GetDouble());
        Assert.Equal(JsonValueKind.Null, doc.GetProperty("firstOwnFindingSeconds").ValueKind);
        var main = doc.GetProperty("instances")[0];
        Assert.Equal(1000, main.GetProperty("execs").GetInt64());
        Assert.Equal(99.5, main.GetProperty("stability").GetDouble());
    }
}
