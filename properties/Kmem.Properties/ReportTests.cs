using System.Text.RegularExpressions;
using System.Xml.Linq;
using Kmem.Report;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;
using Xunit;

namespace Kmem.Properties;

/// <summary>
/// Counterexamples people can read: the step diffs say what a free or an allocation did to the free
/// lists, the explanation names the zone, the frames and the preceding free, and the maps (text and
/// HTML) show the frames and mark the failure. Each test compares a buggy target with the reference,
/// or checks a fact a broken report would get wrong.
/// </summary>
public class ReportTests
{
    private const string NoUpper = "no-upper-coalesce-coalescing-free_pages.kmem";

    private static Recording Record(string file, string target, bool maps = true) =>
        Recorder.Record(Corpus.Load("regressions", file), TargetRegistry.Get(target)!.Create, target, new RecordOptions { Maps = maps });

    private static Recording RecordText(string text, string target = "reference", bool maps = true) =>
        Recorder.Record(ScenarioParser.Parse(text, "t.kmem"), TargetRegistry.Get(target)!.Create, target, new RecordOptions { Maps = maps });

    [Fact]
    public void A_slab_page_is_labelled_with_the_name_its_reused_handle_was_bound_to_last()
    {
        // The reference hands a destroyed cache's handle to the next kmem_cache_create (and a freed
        // area's address to the next vmalloc): the page belongs to the new name, not the old one.
        const string text = """
            profile linux-6.8-x86_64
            ram 64M
            c = kmem_cache_create 100
            kmem_cache_destroy c
            d = kmem_cache_create 200
            x = kmem_cache_alloc d
            v = vmalloc 8K
            vfree v
            w = vmalloc 8K
            """;
        var rec = RecordText(text);
        Assert.True(rec.Verdict.Ok, rec.Verdict.ToString());
        // The reuse the labels depend on: d gets c's handle, w gets v's address.
        var bound = new Dictionary<string, ulong>();
        ScenarioRunner.Run(ScenarioParser.Parse(text, "t.kmem"), TargetRegistry.Get("reference")!.Create,
            new RunOptions { Trace = t => { if (t.Op?.Bind is { } b) bound[b] = t.Address; } });
        Assert.Equal(bound["c"], bound["d"]);
        Assert.Equal(bound["v"], bound["w"]);
        Assert.Contains(rec.Owners.Values, o => o.Kind == "slab" && o.Label == "cache d");
        Assert.DoesNotContain(rec.Owners.Values, o => o.Label == "cache c");
        Assert.Equal(2, rec.Owners.Values.Count(o => o.Kind == "vmalloc" && o.Label == "w"));
    }

    [Fact]
    public void The_trace_says_a_free_merged_on_the_reference_and_did_not_on_the_buggy_target()
    {
        var good = Record(NoUpper, "reference");
        var bad = Record(NoUpper, "buggy:no-upper-coalesce");
        Assert.True(good.Verdict.Ok);
        Assert.Equal("coalescing/free_pages", bad.Verdict.Signature);

        // Step 1 (the allocation): the order-8 boot chunk at 1 MiB is split, frame 256 goes to p0.
        var alloc = good.Steps.Single(s => s.Text == "p0 = alloc_pages 0");
        Assert.Contains(alloc.Changes, c => c.StartsWith("split the order-8 free block 0x100000–0x1fffff", StringComparison.Ordinal));
        Assert.Contains(alloc.Changes, c => c.StartsWith("allocated the order-0 block 0x100000 (frame 256) in DMA to p0", StringComparison.Ordinal));
        Assert.True(alloc.Changes.ToList().FindIndex(c => c.StartsWith("split")) < alloc.Changes.ToList().FindIndex(c => c.StartsWith("allocated")), "split before allocated");

        // Step 2 (the free): the reference merges all the way back to order 8; the buggy target leaves an order-0 block.
        var goodFree = good.Steps.Single(s => s.Text == "free_pages p0");
        var badFree = bad.Steps.Single(s => s.Text == "free_pages p0");
        Assert.Contains(goodFree.Changes, c => c.StartsWith("freed the order-0 block 0x100000 (frame 256)", StringComparison.Ordinal));
        Assert.Contains(goodFree.Changes, c => c.Contains("into an order-8 free block 0x100000–0x1fffff (frames 256–511)", StringComparison.Ordinal));
        Assert.DoesNotContain(badFree.Changes, c => c.StartsWith("merged", StringComparison.Ordinal));
        Assert.Contains(badFree.Changes, c => c == "put on the free lists: an order-0 block 0x100000 (frame 256) in DMA");
        Assert.True(badFree.Failing);
        Assert.False(goodFree.Failing);
        Assert.Single(bad.Steps, s => s.Failing);
    }

    [Fact]
    public void The_explanation_names_the_zone_the_frames_and_the_preceding_free()
    {
        var rec = Record(NoUpper, "buggy:no-upper-coalesce");
        string all = string.Join("\n", rec.Explanation);
        Assert.Contains("zone DMA", all);
        Assert.Contains("0x100000 (frame 256)", all);
        Assert.Contains("0x101000 (frame 257)", all);
        Assert.Contains("order-1 block 0x100000–0x101fff (frames 256–257)", all);
        Assert.Contains("The free that should have merged them: step 2 (line 9), `free_pages p0`", all);
        Assert.Contains("allocated at step 1 (line 8) to p0", all);
        Assert.Equal([(256L, 2L)], rec.Focus);
    }

    [Fact]
    public void The_explanation_of_a_merge_across_zones_names_both_zones_and_the_boundary()
    {
        var rec = Record("cross-zone-merge-free-blocks-mem_init.kmem", "buggy:cross-zone-merge");
        Assert.Equal("free-blocks/mem_init", rec.Verdict.Signature);
        string all = string.Join("\n", rec.Explanation);
        Assert.Contains("starts in zone Normal and ends in zone HighMem", all);
        var highmem = rec.Zones.Single(z => z.Name == "HighMem");
        Assert.Contains($"zone boundary at {rec.Frames(highmem.Start)}", all);
        var (start, count) = Assert.Single(rec.Focus);
        Assert.True(start < highmem.Start && start + count > highmem.Start, "the focus is the block across the boundary");
        // The failing step is the mem_init at the end (the scenario has no operation), with the state after it.
        Assert.StartsWith("mem_init", rec.FailingStep!.Operation, StringComparison.Ordinal);
        Assert.Contains(rec.FailingStep.Map!, s => s.Cell == Cell.Free && s.Order == 10 && s.Start == start);
    }

    [Fact]
    public void A_frame_above_mem_on_the_free_lists_shows_as_stray_and_is_explained()
    {
        var rec = Record("frame-above-mem-limits-mem_init.kmem", "buggy:frame-above-mem");
        var map = rec.FailingStep!.Map!;
        var stray = Assert.Single(map, s => s.Cell == Cell.Stray);
        Assert.Equal(4096, stray.Start);
        Assert.Contains(rec.Explanation, l => l.Contains("contains frame 0x1000000 (frame 4096), which is RAM at or above mem=0x1000000"));
        // And the reference, on the same machine, keeps that frame off the lists.
        var good = Record("frame-above-mem-limits-mem_init.kmem", "reference");
        Assert.DoesNotContain(good.Steps[^1].Map!, s => s.Cell is Cell.Stray or Cell.Lost);
    }

    public static IEnumerable<object[]> AllCorpus =>
        Corpus.Files("regressions").Select(f => new object[] { "regressions", f[0] })
            .Concat(Corpus.Files("examples").Select(f => new object[] { "examples", f[0] }));

    [Theory]
    [MemberData(nameof(AllCorpus))]
    public void Every_map_covers_every_frame_once_and_agrees_with_the_model(string folder, string file)
    {
        var s = Corpus.Load(folder, file);
        string target = folder == "regressions" ? Corpus.HeaderValue(s, "target") ?? "reference" : "reference";
        if (TargetRegistry.Get(target) is null) target = "reference"; // `# target: none`: a regression of the model, run on the reference
        var rec = Recorder.Record(s, TargetRegistry.Get(target)!.Create, target, new RecordOptions { Maps = true });
        var mapped = rec.Steps.Where(x => x.Map is not null).ToList();
        Assert.Equal(rec.Steps.Count, mapped.Count);   // a map at every step, or the checks below prove nothing
        foreach (var step in mapped)
        {
            long next = 0;
            foreach (var span in step.Map!)
            {
                Assert.Equal(next, span.Start);
                Assert.True(span.Count > 0);
                if (span.Order >= 0) Assert.True(span.Count <= 1L << span.Order, $"{file} step {step.Step}: a block span longer than its block");
                next = span.End;
            }
            Assert.Equal(rec.FrameCount, next);
        }
        // On the reference nothing is lost or stray, ever.
        if (target == "reference")
            Assert.All(mapped, st => Assert.DoesNotContain(st.Map!, sp => sp.Cell is Cell.Lost or Cell.Stray));
    }

    [Fact]
    public void The_text_map_shows_the_unmerged_buddies_and_marks_them()
    {
        var rec = Record(NoUpper, "buggy:no-upper-coalesce");
        var w = new StringWriter();
        TerminalMap.Write(rec, w, colour: false);
        var lines = w.ToString().Split('\n');
        int row = Array.FindIndex(lines, l => l.TrimStart().StartsWith("0x100000 ", StringComparison.Ordinal));
        Assert.True(row >= 0, w.ToString());
        // Frames 256 and 257: two order-0 blocks ("00"); then the order-1 block at 258 ("1-"), order 2 at 260 ...
        Assert.EndsWith("001-2---3-------4---------------5-------------------------------", lines[row].TrimEnd());
        int col = lines[row].IndexOf("001-", StringComparison.Ordinal);
        Assert.Equal("^^", lines[row + 1].Substring(col).TrimEnd());
        Assert.DoesNotContain("\u001b[", w.ToString());
        Assert.Contains("-- zone DMA", w.ToString());

        // On the reference the same frames are one order-8 block after the free.
        var good = Record(NoUpper, "reference");
        var gw = new StringWriter();
        TerminalMap.Write(good, gw, colour: false, at: good.Steps[^1]);
        Assert.Contains("0x100000  8-------", gw.ToString());
    }

    [Fact]
    public void The_colour_map_uses_ansi_colours_and_keeps_the_characters()
    {
        var rec = Record(NoUpper, "buggy:no-upper-coalesce");
        var w = new StringWriter();
        TerminalMap.Write(rec, w, colour: true);
        string text = w.ToString();
        Assert.Contains("\u001b[", text);
        string plain = Regex.Replace(text, "\u001b\\[[0-9;]*m", "");
        Assert.Contains("001-2---3-------4", plain);
    }

    [Fact]
    public void The_html_report_is_well_formed_self_contained_and_marks_the_failing_step()
    {
        var rec = Record(NoUpper, "buggy:no-upper-coalesce");
        string html = HtmlReport.Render(rec, "kmem-verify replay no-upper", "0.1.0");
        Assert.StartsWith("<!DOCTYPE html>", html);
        // Well-formed: it parses as XML (every element closed, attributes quoted, script without '<' or '&').
        var doc = XDocument.Parse(html["<!DOCTYPE html>".Length..]);
        // Self-contained: nothing fetched from anywhere.
        Assert.DoesNotMatch("(?i)https?:", html);
        Assert.DoesNotMatch("(?i)<(link|img|iframe|object|embed)\\b", html);
        Assert.DoesNotMatch("(?i)\\s(src|href)\\s*=", html);
        Assert.Contains("<svg", html);

        var els = doc.Descendants().ToList();
        var failingSteps = els.Where(e => e.Name.LocalName == "div" && (string?)e.Attribute("data-failing") == "true").ToList();
        var failing = Assert.Single(failingSteps);
        Assert.Null(failing.Attribute("hidden")); // shown first
        Assert.Contains("free_pages p0", failing.Value);
        Assert.Contains("fails here", failing.Value);
        Assert.All(els.Where(e => e.Name.LocalName == "div" && (string?)e.Attribute("class") == "step"), e => Assert.NotNull(e.Attribute("hidden")));
        Assert.Single(els, e => e.Name.LocalName == "li" && (string?)e.Attribute("data-failing") == "true");
        // The failing line of the scenario is marked, and it is the failing operation.
        var line = Assert.Single(els, e => ((string?)e.Attribute("class") ?? "").Contains("failing-line"));
        Assert.EndsWith("free_pages p0", line.Value);
        // The failure's frames are boxed on the failing step's map, and every step has a physical map.
        Assert.Contains(failing.Descendants(), e => e.Name.LocalName == "rect" && (string?)e.Attribute("class") == "focus");
        Assert.Equal(rec.Steps.Count, els.Count(e => e.Name.LocalName == "svg" && (string?)e.Attribute("class") == "phys"));
    }

    [Fact]
    public void The_html_report_draws_vmalloc_and_ioremap_areas_on_the_virtual_map()
    {
        var rec = RecordText("""
            profile linux-6.8-x86_64
            ram 512M
            boot mem=256M
            r = request_mem_region 256M 64M
            io = ioremap 256M 64M
            v = vmalloc 1M
            vfree v
            """);
        Assert.True(rec.Verdict.Ok, rec.Verdict.ToString());
        var afterVmalloc = rec.Steps.Single(s => s.Text == "v = vmalloc 1M");
        Assert.Equal(2, afterVmalloc.Areas.Count);
        Assert.Contains(afterVmalloc.Areas, a => a.Ioremap && a.Label == "io" && a.Size == 64UL << 20);
        Assert.Contains(afterVmalloc.Areas, a => !a.Ioremap && a.Label == "v" && a.Size == 1UL << 20);
        Assert.Single(rec.Steps[^1].Areas); // vfree took v away
        Assert.All(afterVmalloc.Areas, a => Assert.True(a.Start >= rec.VmallocStart && a.Start + a.Size <= rec.VmallocEnd));

        string html = HtmlReport.Render(rec, "areas", "0.1.0");
        XDocument.Parse(html["<!DOCTYPE html>".Length..]);
        Assert.Contains("<svg class=\"virt\"", html);
        Assert.Contains("v: vmalloc ", html);
        Assert.Contains("io: ioremap ", html);
    }

    [Fact]
    public void Without_virtual_areas_the_html_says_so_and_names_the_vmalloc_area()
    {
        var rec = Record(NoUpper, "reference");
        string html = HtmlReport.Render(rec, "none", "0.1.0");
        Assert.Contains("No vmalloc or ioremap area in this scenario", html);
        Assert.Contains(Recording.Hex(rec.VmallocStart), html);
    }

    [Fact]
    public void The_text_trace_lists_every_step_with_its_changes_and_marks_the_failure()
    {
        var rec = Record(NoUpper, "buggy:no-upper-coalesce");
        var w = new StringWriter();
        TraceText.Write(rec, w);
        string t = w.ToString();
        Assert.Matches(@"step +1 line +8 +p0 = alloc_pages 0 +=> Ok @0x100000", t);
        Assert.Matches(@"step +2 line +9 +free_pages p0 +=> Ok", t);
        Assert.Contains("- freed the order-0 block 0x100000 (frame 256) in DMA of p0", t);
        Assert.Contains(">>> the 'coalescing' check fails here", t);
        Assert.True(t.IndexOf(">>>", StringComparison.Ordinal) > t.IndexOf("free_pages p0", StringComparison.Ordinal));
    }
}
