using System.Globalization;
using System.Net;
using System.Text;
using Kmem.Scenarios;

namespace Kmem.Report;

/// <summary>
/// `replay --html OUT.html`: one self-contained page (inline CSS, inline SVG, a few lines of inline
/// script, nothing fetched): the scenario text beside a timeline of every step, the physical map at
/// each step, the virtual map (vmalloc and ioremap areas), the failing step highlighted, the
/// failure explained, and the frames around the failure one cell a frame.
/// </summary>
public static class HtmlReport
{
    private const int MapWidth = 960, Label = 96, RowH = 13, RowGap = 2, MaxRows = 48;

    public static string Render(Recording rec, string title, string toolVersion)
    {
        var h = new StringBuilder();
        var v = rec.Verdict;
        var failing = rec.FailingStep;
        var initial = failing ?? rec.Steps[^1];
        h.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
        h.Append("<meta name=\"generator\" content=\"kmem-verify ").Append(E(toolVersion)).Append("\"/>\n");
        h.Append("<title>").Append(E(title)).Append("</title>\n<style>\n").Append(Css).Append("</style>\n</head>\n<body>\n");

        // ---- header and verdict
        h.Append("<header><h1>").Append(E(title)).Append("</h1>\n<p class=\"meta\">profile <b>").Append(E(rec.Scenario.ProfileName))
         .Append("</b> · target <b>").Append(E(rec.TargetName)).Append("</b> · ").Append(rec.FrameCount).Append(" frames of ")
         .Append(E(Sizes.Format(rec.PageSize))).Append(" · zones ")
         .Append(E(string.Join(", ", rec.Zones.Select(z => $"{z.Name} {rec.Frames(z.Start, z.End - z.Start)}")))).Append("</p></header>\n");
        if (v.Ok)
            h.Append("<section class=\"verdict ok\"><h2>held</h2><p>").Append(v.Executed).Append(" operations; every expectation held and no invariant broke.</p></section>\n");
        else
        {
            h.Append("<section class=\"verdict fail\" id=\"verdict\"><h2>VIOLATION <code>").Append(E(v.Invariant ?? "")).Append("</code> at step ")
             .Append(v.Step).Append(v.Line > 0 ? $" (line {v.Line})" : "").Append(": ").Append(E(v.Operation)).Append("</h2>\n<p class=\"message\">")
             .Append(E(v.Message)).Append("</p>\n<ul class=\"why\">\n");
            foreach (var l in rec.Explanation) h.Append("<li>").Append(E(l)).Append("</li>\n");
            h.Append("</ul></section>\n");
        }

        h.Append("<main>\n");
        // ---- the scenario text, the failing line marked
        h.Append("<aside class=\"scenario\"><h2>Scenario</h2>\n<pre>");
        var text = ScenarioPrinter.Print(rec.Scenario).TrimEnd('\n').Split('\n');
        var lineOf = LineMap(rec.Scenario, text);
        for (int i = 0; i < text.Length; i++)
        {
            int src = lineOf[i];
            bool fail = !v.Ok && v.Line > 0 && src == v.Line;
            h.Append("<span class=\"ln").Append(fail ? " failing-line" : "").Append("\" data-line=\"").Append(src).Append("\"><i>")
             .Append((i + 1).ToString(CultureInfo.InvariantCulture).PadLeft(3)).Append("</i> ").Append(E(text[i])).Append("</span>");
        }
        h.Append("</pre></aside>\n");

        // ---- the timeline
        // A long run keeps maps for its last steps only: the timeline shows boot and those.
        var shown = rec.Steps.Where(s => s.Index == 0 || s.Map is not null || s.Failing || s == initial).ToList();
        h.Append("<section class=\"timeline\"><h2>Timeline</h2>\n").Append(Legend);
        if (shown.Count < rec.Steps.Count)
            h.Append("<p class=\"note\">").Append(rec.Steps.Count - shown.Count).Append(" earlier steps are not shown (the trace has them: <code>replay --trace</code>).</p>\n");
        h.Append("<ol class=\"steps\">\n");
        foreach (var s in shown)
        {
            h.Append("<li").Append(s.Failing ? " class=\"failing\" data-failing=\"true\"" : "").Append("><button type=\"button\" data-i=\"").Append(s.Index)
             .Append("\"").Append(s == initial ? " class=\"current\"" : "").Append(" title=\"").Append(E(StepTitle(s))).Append("\">")
             .Append(s.Failing ? "✗ " : "").Append(s.Step).Append(' ').Append(E(Short(s))).Append("</button></li>\n");
        }
        h.Append("</ol>\n");
        foreach (var s in shown)
        {
            h.Append("<div class=\"step").Append(s.Failing ? " failing" : "").Append("\" id=\"step-").Append(s.Index).Append("\" data-i=\"").Append(s.Index)
             .Append("\" data-line=\"").Append(s.Line).Append('"').Append(s.Failing ? " data-failing=\"true\"" : "").Append(s == initial ? "" : " hidden=\"hidden\"").Append(">\n");
            h.Append("<h3>").Append(s.Failing ? "<span class=\"badge\">fails here</span> " : "").Append("Step ").Append(s.Step)
             .Append(s.Line > 0 ? $", line {s.Line}" : "").Append(": <code>").Append(E(s.Text.Length > 0 ? s.Text : s.Operation)).Append("</code>");
            if (s.Operation is not ("boot" or "end")) h.Append(" ⇒ <b>").Append(s.Outcome).Append("</b>").Append(s.Outcome == Outcome.Ok && s.Address != 0 ? $" @0x{s.Address:x}" : "");
            h.Append("</h3>\n");
            if (s.Note.Length > 0) h.Append("<p class=\"note\">").Append(E(s.Note)).Append("</p>\n");
            if (s.Changes.Count > 0)
            {
                h.Append("<ul class=\"changes\">");
                foreach (var c in s.Changes) h.Append("<li>").Append(E(c)).Append("</li>");
                h.Append("</ul>\n");
            }
            if (s.Failing && !v.Ok) h.Append("<p class=\"failnote\">").Append(E($"[{v.Invariant}] {v.Message}")).Append("</p>\n");
            h.Append("<h4>Physical memory</h4>\n");
            if (s.Map is { } map) PhysicalSvg(h, rec, s, map);
            else h.Append("<p class=\"note\">No map was kept for this step.</p>\n");
            h.Append("<h4>Virtual memory (vmalloc area)</h4>\n");
            VirtualSvg(h, rec, s);
            h.Append("</div>\n");
        }
        h.Append("</section>\n</main>\n");

        // ---- around the failure, one cell a frame
        var detailAt = failing is { Map: not null } ? failing : rec.Steps.LastOrDefault(s => s.Map is not null);
        if (detailAt?.Map is { } dmap)
        {
            h.Append("<section class=\"detail\"><h2>").Append(failing is null ? "Frames touched by the last step" : "Around the failure")
             .Append(", one cell a frame</h2>\n");
            DetailSvg(h, rec, detailAt, dmap);
            h.Append("</section>\n");
        }
        h.Append("<footer><p>").Append(E(TerminalMap.LegendText)).Append("</p><p>kmem-verify ").Append(E(toolVersion))
         .Append(" · this page is self-contained: nothing is fetched.</p></footer>\n");
        h.Append("<script>\n").Append(Script).Append("</script>\n</body>\n</html>\n");
        return h.ToString();
    }

    // ------------------------------------------------------------------ physical map

    /// <summary>Frames per row: a power of two from 64 up, so that the map has at most <see cref="MaxRows"/> rows.</summary>
    public static long FramesPerRow(long frames)
    {
        long fpr = 64;
        while ((frames + fpr - 1) / fpr > MaxRows) fpr *= 2;
        return fpr;
    }

    private static void PhysicalSvg(StringBuilder h, Recording rec, StepRecord s, IReadOnlyList<Span> map)
    {
        long fpr = FramesPerRow(rec.FrameCount);
        long rows = (rec.FrameCount + fpr - 1) / fpr;
        double cw = (double)MapWidth / fpr;
        int height = (int)rows * (RowH + RowGap) + 4;
        h.Append("<svg class=\"phys\" role=\"img\" width=\"").Append(Label + MapWidth + 8).Append("\" height=\"").Append(height)
         .Append("\" viewBox=\"0 0 ").Append(Label + MapWidth + 8).Append(' ').Append(height).Append("\">\n");
        h.Append("<desc>").Append(E($"Physical memory after step {s.Step}: {fpr} frames a row")).Append("</desc>\n");
        for (long r = 0; r < rows; r++)
        {
            long y = r * (RowH + RowGap);
            string zone = rec.ZoneOf(r * fpr);
            h.Append("<text x=\"0\" y=\"").Append(y + RowH - 3).Append("\" class=\"addr\">").Append(Recording.Hex((ulong)(r * fpr) << rec.PageShift))
             .Append("</text><rect x=\"").Append(Label - 8).Append("\" y=\"").Append(y).Append("\" width=\"5\" height=\"").Append(RowH)
             .Append("\" class=\"zone z-").Append(E(zone)).Append("\"><title>").Append(E(zone)).Append("</title></rect>\n");
        }
        var ownerIndex = rec.Owners.Values.ToDictionary(o => o.Id, o => o.Key - 1);
        foreach (var span in map)
        {
            string fill = Fill(span, ownerIndex);
            string tip = SpanTitle(rec, span);
            foreach (var (x, y, w) in Segments(span.Start, span.Count, fpr, cw))
                h.Append("<rect x=\"").Append(F(x)).Append("\" y=\"").Append(y).Append("\" width=\"").Append(F(w)).Append("\" height=\"").Append(RowH)
                 .Append("\" fill=\"").Append(fill).Append(w >= 3 ? "\" class=\"edge" : "").Append("\"><title>").Append(E(tip)).Append("</title></rect>\n");
        }
        // Zone boundaries that are not at a row start.
        foreach (var z in rec.Zones)
            if (z.Start % fpr != 0)
            {
                var (x, y, _) = Segments(z.Start, 1, fpr, cw).First();
                h.Append("<line x1=\"").Append(F(x)).Append("\" y1=\"").Append(y - 1).Append("\" x2=\"").Append(F(x)).Append("\" y2=\"").Append(y + RowH + 1)
                 .Append("\" class=\"zoneline\"><title>").Append(E($"zone {z.Name} starts at {rec.Frames(z.Start)}")).Append("</title></line>\n");
            }
        var marks = s.Failing && rec.Focus.Count > 0 ? rec.Focus : s.Touched;
        string cls = s.Failing ? "focus" : "touched";
        foreach (var (start, count) in marks)
            foreach (var (x, y, w) in Segments(start, count, fpr, cw))
                h.Append("<rect x=\"").Append(F(x - 1)).Append("\" y=\"").Append(y - 1).Append("\" width=\"").Append(F(w + 2)).Append("\" height=\"").Append(RowH + 2)
                 .Append("\" class=\"").Append(cls).Append("\"/>\n");
        h.Append("</svg>\n");
    }

    private static IEnumerable<(double X, long Y, double W)> Segments(long start, long count, long fpr, double cw)
    {
        long a = start, end = start + count;
        while (a < end)
        {
            long row = a / fpr, rowEnd = Math.Min(end, (row + 1) * fpr);
            yield return (Label + (a - row * fpr) * cw, row * (RowH + RowGap), Math.Max(0.6, (rowEnd - a) * cw));
            a = rowEnd;
        }
    }

    private static string Fill(Span s, IReadOnlyDictionary<int, int> ownerIndex) => s.Cell switch
    {
        Cell.Hole => "#e4e4e4",
        Cell.Reserved => "#8d8d8d",
        Cell.AboveMem => "#d9a6e6",
        Cell.Unmanaged => "#bdbdbd",
        Cell.Memblock => "#e0b63c",
        Cell.Lost or Cell.Stray => "#e0241b",
        Cell.Free when s.Order < 0 => "#b9dfb2",
        // Buddies alternate in shade, so two unmerged buddies show as two blocks, a merged pair as one.
        Cell.Free => $"hsl(130,45%,{Math.Clamp(82 - s.Order * 4 - (int)((s.Start >> Math.Min(s.Order, 62)) & 1) * 6, 24, 82)}%)",
        _ => $"hsl({OwnerHue(ownerIndex.TryGetValue(s.Owner, out int i) ? i : 0)},60%,52%)",
    };

    /// <summary>Owners get hues around blue, purple and orange, never the greens of free blocks or the red of errors.</summary>
    private static int OwnerHue(int i)
    {
        int[] hues = [212, 265, 190, 30, 300, 235, 45, 330];
        return hues[i % hues.Length];
    }

    private static string SpanTitle(Recording rec, Span s)
    {
        string frames = rec.Frames(s.Start, s.Count);
        string zone = rec.ZoneOf(s.Start);
        return s.Cell switch
        {
            Cell.Free when s.Order >= 0 => $"free order-{s.Order} block {frames}, {zone}",
            Cell.Free => $"free (memblock's, before mem_init) {frames}, {zone}",
            Cell.Allocated or Cell.Memblock => rec.Owners.TryGetValue(s.Owner, out var o)
                ? $"{o.Label}: {o.Kind}{(o.Order >= 0 ? $" order {o.Order}" : "")} {frames}, {zone}, since step {o.Step}"
                : $"allocated {frames}, {zone}",
            Cell.Lost => $"free but on no free list (lost) {frames}, {zone}",
            Cell.Stray => $"on a free list (order {s.Order}) but not free in the model {frames}, {zone}",
            Cell.Hole => $"hole (not RAM) {frames}",
            Cell.Reserved => $"reserved {frames}, {zone}",
            Cell.AboveMem => $"RAM at or above mem= {frames}",
            _ => $"{s.Cell} {frames}",
        };
    }

    // ------------------------------------------------------------------ virtual map

    private static void VirtualSvg(StringBuilder h, Recording rec, StepRecord s)
    {
        bool any = rec.Steps.Any(x => x.Areas.Count > 0);
        string range = rec.VmallocEnd > rec.VmallocStart ? $"{Recording.Hex(rec.VmallocStart)}–{Recording.Hex(rec.VmallocEnd - 1)} ({Sizes.Format(rec.VmallocEnd - rec.VmallocStart)})" : "unknown";
        if (!any)
        {
            h.Append("<p class=\"note\">No vmalloc or ioremap area in this scenario. The vmalloc area is ").Append(E(range)).Append(".</p>\n");
            return;
        }
        ulong lo = rec.VmallocStart;
        ulong hi = rec.Steps.SelectMany(x => x.Areas).Max(a => a.Start + a.Size);
        hi = Math.Max(hi, lo + 1);
        ulong span = hi - lo + (hi - lo) / 10 + 1;
        const int height = 34;
        h.Append("<svg class=\"virt\" role=\"img\" width=\"").Append(Label + MapWidth + 8).Append("\" height=\"").Append(height)
         .Append("\" viewBox=\"0 0 ").Append(Label + MapWidth + 8).Append(' ').Append(height).Append("\">\n<desc>")
         .Append(E($"vmalloc area {range}; shown: the first {Sizes.Format(span)}")).Append("</desc>\n");
        h.Append("<text x=\"0\" y=\"14\" class=\"addr\">").Append(Recording.Hex(lo)).Append("</text>");
        h.Append("<rect x=\"").Append(Label).Append("\" y=\"2\" width=\"").Append(MapWidth).Append("\" height=\"18\" fill=\"#f1f1f1\" stroke=\"#bbb\"/>\n");
        foreach (var a in s.Areas)
        {
            double x = Label + (double)(a.Start - lo) / span * MapWidth, w = Math.Max(2, (double)a.Size / span * MapWidth);
            h.Append("<rect x=\"").Append(F(x)).Append("\" y=\"2\" width=\"").Append(F(w)).Append("\" height=\"18\" fill=\"").Append(a.Ioremap ? "#c77c2e" : "#3d7dd8")
             .Append("\" class=\"edge\"><title>").Append(E($"{a.Label}: {(a.Ioremap ? "ioremap" : "vmalloc")} {Recording.Hex(a.Start)}–{Recording.Hex(a.Start + a.Size - 1)} ({Sizes.Format(a.Size)})")).Append("</title></rect>\n");
        }
        h.Append("<text x=\"").Append(Label).Append("\" y=\"31\" class=\"addr\">").Append(E($"{s.Areas.Count} area(s); the vmalloc area is {range}")).Append("</text>\n</svg>\n");
    }

    // ------------------------------------------------------------------ around the failure

    private static void DetailSvg(StringBuilder h, Recording rec, StepRecord s, IReadOnlyList<Span> map)
    {
        const int cell = 14, per = TerminalMap.PerRow;
        var focus = s.Failing && rec.Focus.Count > 0 ? rec.Focus : s.Touched;
        long lo = focus.Count > 0 ? focus.Min(f => f.Start) : 0, hi = focus.Count > 0 ? focus.Max(f => f.Start + f.Count) : Math.Min(rec.FrameCount, per);
        long from = Math.Max(0, (lo / per - 1) * per), to = Math.Min(rec.FrameCount, (hi + per - 1) / per * per + per);
        if (to - from > 12 * per) to = from + 12 * per;
        long rows = (to - from + per - 1) / per;
        var ownerIndex = rec.Owners.Values.ToDictionary(o => o.Id, o => o.Key - 1);
        int width = Label + per * cell + 8, height = (int)rows * (cell + 3) + 4;
        h.Append("<svg class=\"detail-map\" role=\"img\" width=\"").Append(width).Append("\" height=\"").Append(height)
         .Append("\" viewBox=\"0 0 ").Append(width).Append(' ').Append(height).Append("\">\n<desc>")
         .Append(E($"frames {from}–{to - 1} after step {s.Step}")).Append("</desc>\n");
        int si = 0;
        for (long p = from; p < to; p++)
        {
            while (si < map.Count - 1 && map[si].End <= p) si++;
            var span = map[si].Start <= p && p < map[si].End ? map[si] : new Span(p, 1, Cell.Hole, -1, 0);
            long row = (p - from) / per, col = (p - from) % per;
            if (col == 0)
                h.Append("<text x=\"0\" y=\"").Append(row * (cell + 3) + cell - 3).Append("\" class=\"addr\">").Append(Recording.Hex((ulong)p << rec.PageShift)).Append("</text>\n");
            var (ch, _) = TerminalMap.Glyph(span, p, ownerIndex);
            bool mark = focus.Any(f => p >= f.Start && p < f.Start + f.Count);
            long x = Label + col * cell, y = row * (cell + 3);
            h.Append("<g><title>").Append(E($"frame {p} ({Recording.Hex((ulong)p << rec.PageShift)}), {rec.ZoneOf(p)}: {SpanTitle(rec, span)}")).Append("</title><rect x=\"").Append(x).Append("\" y=\"").Append(y)
             .Append("\" width=\"").Append(cell - 1).Append("\" height=\"").Append(cell).Append("\" fill=\"").Append(Fill(span, ownerIndex)).Append('"')
             .Append(mark ? " class=\"focus\"" : "").Append("/><text x=\"").Append(x + 3).Append("\" y=\"").Append(y + cell - 3).Append("\" class=\"glyph\">").Append(E(ch.ToString())).Append("</text></g>\n");
        }
        h.Append("</svg>\n");
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>For each printed line, the source line of the scenario it shows (printed lines are renumbered).</summary>
    private static int[] LineMap(Scenario s, string[] printed)
    {
        var map = new int[printed.Length];
        int firstOp = printed.Length - s.Ops.Count;
        for (int i = 0; i < printed.Length; i++)
            map[i] = i >= firstOp && firstOp >= 0 ? s.Ops[i - firstOp].Line : 0;
        return map;
    }

    private static string StepTitle(StepRecord s) =>
        $"step {s.Step}{(s.Line > 0 ? $", line {s.Line}" : "")}: {(s.Text.Length > 0 ? s.Text : s.Operation)}{(s.Operation is "boot" or "end" ? "" : $" => {s.Outcome}")}";

    private static string Short(StepRecord s)
    {
        string t = s.Text.Length > 0 ? s.Text : s.Operation;
        return t.Length > 28 ? t[..27] + "…" : t;
    }

    private static readonly string Legend =
        "<p class=\"legend\">"
        + string.Join(" ", new (string Colour, string Text)[]
        {
            ("#e4e4e4", "hole"), ("#8d8d8d", "reserved"), ("#d9a6e6", "at/above mem="), ("#e0b63c", "memblock"),
            ("hsl(130,45%,78%)", "free, low order"), ("hsl(130,45%,40%)", "free, high order"), ("hsl(212,60%,52%)", "allocated (a colour per owner)"),
            ("#e0241b", "lost or stray"),
        }.Select(x => $"<span><i style=\"background:{x.Colour}\"></i>{x.Text}</span>"))
        + "<span><i class=\"focusbox\"></i>the failure</span><span><i class=\"touchbox\"></i>touched by the step</span></p>\n";

    private static string F(double d) => d.ToString("0.##", CultureInfo.InvariantCulture);

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private const string Css = """
        body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #1d1d1d; background: #fafafa; }
        h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 8px 0; } h3 { font-size: 14px; margin: 6px 0; } h4 { font-size: 13px; margin: 10px 0 4px; color: #555; }
        .meta { color: #555; margin: 0 0 10px; }
        .verdict { border-radius: 6px; padding: 8px 12px; margin-bottom: 12px; }
        .verdict.fail { background: #fde8e7; border: 1px solid #e0241b; } .verdict.ok { background: #e7f6e7; border: 1px solid #3a9a3a; }
        .verdict .message { font-family: ui-monospace, monospace; font-size: 13px; }
        .why li { margin: 2px 0; }
        main { display: grid; grid-template-columns: 330px minmax(0, 1fr); gap: 16px; align-items: start; }
        .scenario { min-width: 0; position: sticky; top: 8px; }
        .scenario pre { background: #fff; border: 1px solid #ddd; padding: 6px; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
        .scenario .ln { display: block; } .scenario .ln i { color: #999; font-style: normal; }
        .scenario .ln.failing-line { background: #fbd0cd; font-weight: bold; } .scenario .ln.current { outline: 2px solid #3d7dd8; }
        .timeline { flex: 1 1 auto; min-width: 0; }
        .steps { list-style: none; padding: 0; margin: 0 0 8px; display: flex; flex-wrap: wrap; gap: 4px; }
        .steps button { font: 12px ui-monospace, monospace; border: 1px solid #bbb; background: #fff; border-radius: 4px; padding: 2px 6px; cursor: pointer; }
        .steps button.current { background: #3d7dd8; color: #fff; border-color: #3d7dd8; }
        .steps li.failing button { border: 2px solid #e0241b; color: #b0140c; font-weight: bold; } .steps li.failing button.current { background: #e0241b; color: #fff; }
        .step { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 6px 10px; }
        .step.failing { border: 2px solid #e0241b; }
        .badge { background: #e0241b; color: #fff; border-radius: 4px; padding: 0 6px; font-size: 12px; }
        .note { color: #555; font-size: 13px; } .failnote { color: #b0140c; font-family: ui-monospace, monospace; font-size: 12px; }
        .changes { font-size: 12px; font-family: ui-monospace, monospace; margin: 4px 0; padding-left: 18px; }
        svg { display: block; max-width: 100%; height: auto; } svg .addr { font: 10px ui-monospace, monospace; fill: #555; }
        svg .edge { stroke: #fff; stroke-width: 0.6; } svg .glyph { font: 10px ui-monospace, monospace; fill: #111; pointer-events: none; }
        svg .focus { fill: none; stroke: #e0241b; stroke-width: 2.5; } svg rect.focus[fill] { fill-opacity: 1; }
        svg .detail-map .focus, .detail-map rect.focus { stroke: #e0241b; stroke-width: 2.5; }
        svg .touched { fill: none; stroke: #f29a1b; stroke-width: 2; }
        svg .zoneline { stroke: #111; stroke-width: 2; }
        .zone.z-DMA { fill: #f3c623; } .zone.z-DMA32 { fill: #4db6ac; } .zone.z-Normal { fill: #7e57c2; } .zone.z-HighMem { fill: #ef6c00; }
        .detail { margin-top: 16px; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 6px 10px; }
        footer { color: #666; font-size: 12px; margin-top: 16px; }
        .legend { font-size: 12px; color: #444; margin: 0 0 6px; } .legend span { margin-right: 10px; white-space: nowrap; }
        .legend i { display: inline-block; width: 11px; height: 11px; vertical-align: -1px; margin-right: 3px; border: 1px solid #ccc; }
        .legend i.focusbox { border: 2px solid #e0241b; background: none; } .legend i.touchbox { border: 2px solid #f29a1b; background: none; }

        """;

    // No '<' and no '&' in the script, so the page stays well-formed XML too (a test parses it so).
    private const string Script = """
        (function () {
          var steps = Array.prototype.slice.call(document.querySelectorAll('.step'));
          var buttons = Array.prototype.slice.call(document.querySelectorAll('.steps button'));
          var lines = Array.prototype.slice.call(document.querySelectorAll('.scenario .ln'));
          var current = 0;
          function show(i) {
            current = i;
            steps.forEach(function (s) { s.hidden = s.getAttribute('data-i') !== String(i); });
            buttons.forEach(function (b) { b.classList.toggle('current', b.getAttribute('data-i') === String(i)); });
            var step = document.getElementById('step-' + i);
            var line = step ? step.getAttribute('data-line') : '0';
            lines.forEach(function (l) { l.classList.toggle('current', line !== '0' ? l.getAttribute('data-line') === line : false); });
          }
          buttons.forEach(function (b) { b.addEventListener('click', function () { show(Number(b.getAttribute('data-i'))); }); });
          document.addEventListener('keydown', function (e) {
            if (e.key === 'ArrowRight') { if (steps.length - 1 > current) show(current + 1); }
            if (e.key === 'ArrowLeft') { if (current > 0) show(current - 1); }
          });
          var start = document.querySelector('.step[data-failing="true"]') || steps[steps.length - 1];
          if (start) show(Number(start.getAttribute('data-i')));
        })();

        """;
}
