using Kmem.Scenarios;
using Spectre.Console;

namespace Kmem.Cli;

/// <summary>`kmem-verify profiles`: every profile's figures as a table.</summary>
public static class ProfileTable
{
    public static void Write(TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = output == Console.Out && !Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = ColorSystemSupport.Detect,
        });
        if (output != Console.Out || Console.IsOutputRedirected) console.Profile.Width = 200;
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var c in new[] { "profile", "page", "orders (MAX_ORDER)", "largest block", "kmalloc", "slab objects", "zones", "vmalloc area", "default RAM", "low reserved", "watermarks" })
            table.AddColumn(c);
        foreach (var p in Profiles.All)
        {
            int largest = p.MaxOrderInclusive ? p.MaxOrder : p.MaxOrder - 1;
            ulong block = p.PageSize << largest;
            string orders = p.MaxOrderInclusive
                ? $"0..{largest} (MAX_PAGE_ORDER {p.MaxOrder}, inclusive)"
                : $"0..{largest} (MAX_ORDER {p.MaxOrder}, exclusive)";
            string kmalloc = p.Slab switch
            {
                SlabKind.PowerOfTwoWithHeader => $"2^n blocks with a {p.KmallocHeader}-byte header, up to {Sizes.Format(p.KmallocMaxFixed ?? 0)}",
                SlabKind.Slab => $"SLAB caches {Sizes.Format(p.KmallocBuckets[0])}..{Sizes.Format(p.KmallocMaxCacheSize)}; larger fails",
                _ => $"SLUB caches {p.KmallocBuckets[0]}..{Sizes.Format(p.KmallocMaxCacheSize)}; pages up to {Sizes.Format(block)} (KMALLOC_MAX_SIZE)",
            };
            string slab = !p.HasKmemCache ? "no kmem_cache API"
                : p.SlabObjectLimit is { } lim ? $"up to {Sizes.Format(lim)}{(p.SlabObjectLimitIsBug ? ", larger BUG()s" : "")}"
                : "per-cache order limit (EINVAL)";
            var zones = new List<string> { "DMA <16M" };
            if (p.Dma32ZoneEnd is { } d32) zones.Add($"DMA32 <{Sizes.Format(d32)}");
            zones.Add(p.LowmemLimit is { } low ? $"Normal <{Sizes.Format(low)}" : "Normal");
            if (p.HasHighMem) zones.Add("HighMem above");
            string vmalloc = p.VmallocTotal64 > 0 ? $"{Sizes.Format(p.VmallocTotal64)} (vmalloc= ignored)"
                : p.VmallocParamHonoured ? $"reserve {Sizes.Format(p.VmallocReserveDefault)}, vmalloc= sets it"
                : $"above RAM in the 1G kernel space";
            table.AddRow(
                Markup.Escape(p.Name), Sizes.Format(p.PageSize), Markup.Escape(orders), Sizes.Format(block), Markup.Escape(kmalloc),
                Markup.Escape(slab), Markup.Escape(string.Join(", ", zones)), Markup.Escape(vmalloc), Sizes.Format(p.DefaultRam),
                Sizes.Format(p.LowReserved), p.Watermarks ? $"yes (min_free_kbytes <= {p.MinFreeKbytesMax})" : "not modelled");
        }
        console.Write(table);
        output.WriteLine($"default: {Profiles.DefaultName}");
    }
}
