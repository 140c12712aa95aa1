using System.Globalization;
using System.Text;

namespace Kmem.Scenarios;

/// <summary>
/// Writes a <see cref="Scenario"/> as canonical `.kmem` text: the header comments, `profile NAME`
/// (always; `kmem 1` is never written, the version being 1 when absent), the `ram`, `hole` and
/// `boot` lines, then one line per operation. Sizes go through <see cref="Sizes.Format"/>,
/// addresses through <see cref="Sizes.FormatAddress"/>, orders and counts in decimal, GFP flags in
/// a fixed order. For every scenario the parser produced, Print(Parse(Print(s))) == Print(s).
/// </summary>
public static class ScenarioPrinter
{
    public static string Print(Scenario s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var sb = new StringBuilder();
        var h = s.Header;
        foreach (string c in h.Comments)
        {
            string text = c.Replace('\r', ' ').Replace('\n', ' ');
            sb.Append('#');
            if (text.Length > 0)
                sb.Append(' ').Append(text);
            sb.Append('\n');
        }
        sb.Append("profile ").Append(s.ProfileName).Append('\n');
        foreach (var r in h.Ram)
        {
            sb.Append("ram ");
            if (r.Start != 0)
                sb.Append(Sizes.FormatAddress(r.Start)).Append(' ');
            sb.Append(Sizes.Format(r.Size)).Append('\n');
        }
        foreach (var r in h.Holes)
            sb.Append("hole ").Append(Sizes.FormatAddress(r.Start)).Append(' ').Append(Sizes.Format(r.Size)).Append('\n');
        if (h.Boot.Count > 0)
        {
            sb.Append("boot");
            foreach (var p in h.Boot)
                sb.Append(' ').Append(Print(p));
            sb.Append('\n');
        }
        foreach (var op in s.Ops)
            sb.Append(Print(op)).Append('\n');
        return sb.ToString();
    }

    /// <summary>One boot parameter as written on the `boot` line, for example `memmap=4M$32M`.</summary>
    public static string Print(BootParam p)
    {
        ArgumentNullException.ThrowIfNull(p);
        return p.Kind switch
        {
            BootParamKind.Mem => "mem=" + Sizes.Format(p.Value),
            BootParamKind.Vmalloc => "vmalloc=" + Sizes.Format(p.Value),
            BootParamKind.MaxOrder => "max_order=" + p.Value.ToString(CultureInfo.InvariantCulture),
            _ => "memmap=" + string.Join(",", p.Entries.Select(Print)),
        };
    }

    /// <summary>One memmap= entry: `nn`, `nn@ss`, `nn$ss`, `nn#ss` or `nn!ss`.</summary>
    public static string Print(MemmapEntry e) => e.Kind == MemmapKind.MemLimit
        ? Sizes.Format(e.Size)
        : Sizes.Format(e.Size) + Syntax.MemmapSeparators[(int)e.Kind] + Sizes.FormatAddress(e.Start);

    /// <summary>One operation line, without the line break (also what traces show).</summary>
    public static string Print(Op op)
    {
        ArgumentNullException.ThrowIfNull(op);
        var sb = new StringBuilder();
        if (op.Bind is not null && Syntax.Produces(op.Kind))
            sb.Append(op.Bind).Append(" = ");
        sb.Append(Syntax.OpNames[(int)op.Kind]);
        switch (op.Kind)
        {
            case OpKind.MemblockAlloc:
                Arg(sb, Sizes.Format(op.Number));
                if (op.Align is ulong a)
                    Arg(sb, "align=" + Sizes.Format(a));
                break;
            case OpKind.MemblockFree:
            case OpKind.Kfree:
            case OpKind.Vfree:
            case OpKind.ReleaseMemRegion:
            case OpKind.Iounmap:
            case OpKind.DmaFreeCoherent:
                Arg(sb, Print(op.Ref));
                break;
            case OpKind.MemInit:
            case OpKind.Meminfo:
                break;
            case OpKind.AllocPages:
                Arg(sb, op.Number.ToString(CultureInfo.InvariantCulture));
                AppendGfp(sb, op.Gfp);
                break;
            case OpKind.FreePages:
                Arg(sb, Print(op.Ref));
                if (op.Order is int order)
                    Arg(sb, "order=" + order.ToString(CultureInfo.InvariantCulture));
                break;
            case OpKind.Kmalloc:
            case OpKind.DmaAllocCoherent:
                Arg(sb, Sizes.Format(op.Number));
                AppendGfp(sb, op.Gfp);
                break;
            case OpKind.KmemCacheCreate:
                Arg(sb, Sizes.Format(op.Number));
                if (op.Align is ulong ca)
                    Arg(sb, "align=" + Sizes.Format(ca));
                if (op.Text is not null)
                    Arg(sb, "name=" + op.Text);
                break;
            case OpKind.KmemCacheAlloc:
                Arg(sb, Print(op.Ref));
                AppendGfp(sb, op.Gfp);
                break;
            case OpKind.KmemCacheFree:
                Arg(sb, Print(op.Ref));
                Arg(sb, Print(op.Ref2));
                break;
            case OpKind.KmemCacheDestroy:
                Arg(sb, Print(op.Ref));
                break;
            case OpKind.Vmalloc:
                Arg(sb, Sizes.Format(op.Number));
                break;
            case OpKind.RequestMemRegion:
            case OpKind.Ioremap:
                Arg(sb, Sizes.FormatAddress(op.Number));
                Arg(sb, Sizes.Format(op.Number2));
                break;
            case OpKind.Context:
                Arg(sb, op.Atomic ? "atomic" : "process");
                break;
            case OpKind.Expect:
                Arg(sb, op.Field ?? Syntax.Fields[0]);
                Arg(sb, Syntax.CmpNames[(int)op.Cmp]);
                Arg(sb, Sizes.Format(op.Number));
                break;
        }
        if (op.Expected is Outcome o && op.Kind != OpKind.Expect)
            sb.Append(" => ").Append(Syntax.OutcomeNames[(int)o]);
        return sb.ToString();
    }

    /// <summary>GFP flags joined with `|` in the fixed order; empty for <see cref="Gfp.None"/>.</summary>
    public static string Print(Gfp gfp)
    {
        var sb = new StringBuilder();
        foreach (var (flag, name) in Syntax.GfpNames)
        {
            if ((gfp & flag) == 0)
                continue;
            if (sb.Length > 0)
                sb.Append('|');
            sb.Append(name);
        }
        return sb.ToString();
    }

    /// <summary>A name, or `@` and an address (`@0x0` when there is no reference at all).</summary>
    public static string Print(Ref? r) => r switch
    {
        { IsName: true } named => named.Name!,
        { } raw => "@" + Sizes.FormatAddress(raw.Address),
        null => "@0x0",
    };

    private static void Arg(StringBuilder sb, string text) => sb.Append(' ').Append(text);

    private static void AppendGfp(StringBuilder sb, Gfp gfp)
    {
        string text = Print(gfp);
        if (text.Length > 0)
            Arg(sb, text);
    }
}
