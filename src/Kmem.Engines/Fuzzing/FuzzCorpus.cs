using System.Globalization;
using System.Text;
using Kmem.Scenarios;

namespace Kmem.Engines.Fuzzing;

/// <summary>One seed file: its name and contents.</summary>
public sealed record Seed(string Name, byte[] Bytes);

/// <summary>
/// Seeds and dictionaries for AFL++: binary seeds are BinaryCodec encodings of hand-written
/// `.kmem` files and of scenarios the check engine generates; the dictionaries come from the codec
/// (binary harness) and from the language's keywords (parser harness).
/// </summary>
public static class FuzzCorpus
{
    public const int DefaultGenerated = 24;
    public const ulong DefaultSeed = 1;
    /// <summary>Generated seeds stay short: AFL++ prefers small inputs.</summary>
    public const int SeedMaxOps = 24;

    /// <summary>The `.kmem` files of the given folders, in a stable order.</summary>
    public static IReadOnlyList<string> KmemFiles(IEnumerable<string> folders) =>
        folders.Where(Directory.Exists)
            .SelectMany(d => Directory.GetFiles(d, "*.kmem").Order(StringComparer.Ordinal))
            .ToList();

    /// <summary>
    /// Binary seeds: one per `.kmem` file (named example-STEM.bin after the file) and
    /// <paramref name="generated"/> generated scenarios over every profile (gen-SEED-I.bin). A file
    /// that does not parse is skipped and named in <paramref name="skipped"/>.
    /// </summary>
    public static IReadOnlyList<Seed> BinarySeeds(IEnumerable<string> kmemFiles, int generated, ulong seed, List<string>? skipped = null, int? ops = null)
    {
        var seeds = new List<Seed>();
        foreach (string f in kmemFiles)
        {
            try
            {
                var s = ScenarioParser.Parse(File.ReadAllText(f), f);
                seeds.Add(new Seed($"example-{Path.GetFileNameWithoutExtension(f)}.bin", BinaryCodec.Encode(s)));
            }
            catch (ScenarioException e)
            {
                skipped?.Add(e.Message);
            }
        }
        foreach (var (name, s) in Generated(generated, seed, ops))
            seeds.Add(new Seed(name + ".bin", BinaryCodec.Encode(s)));
        return Dedup(seeds);
    }

    /// <summary>Text seeds for the parser harness: the `.kmem` files as they are, and generated scenarios printed.</summary>
    public static IReadOnlyList<Seed> TextSeeds(IEnumerable<string> kmemFiles, int generated, ulong seed, int? ops = null)
    {
        var seeds = kmemFiles.Select(f => new Seed(Path.GetFileName(f), File.ReadAllBytes(f))).ToList();
        foreach (var (name, s) in Generated(generated, seed, ops))
            seeds.Add(new Seed(name + ".kmem", Encoding.UTF8.GetBytes(ScenarioPrinter.Print(s))));
        return Dedup(seeds);
    }

    /// <summary>Up to <see cref="SeedMaxOps"/> operations each, or exactly <paramref name="ops"/> (for a benchmark of a fixed input length).</summary>
    private static IEnumerable<(string Name, Scenario Scenario)> Generated(int count, ulong seed, int? ops)
    {
        var gen = new GenOptions { MaxOps = ops ?? SeedMaxOps };
        for (int i = 0; i < count; i++)
            yield return (string.Create(CultureInfo.InvariantCulture, $"gen-{seed}-{i:D3}"),
                ops is { } n ? CheckEngine.GenerateExactly(gen, n, seed, i) : CheckEngine.Generate(gen, seed, i, count));
    }

    private static List<Seed> Dedup(List<Seed> seeds)
    {
        var seen = new HashSet<string>();
        return seeds.Where(s => seen.Add(Convert.ToHexString(s.Bytes))).ToList();
    }

    /// <summary>Writes seeds into a folder (created if needed); returns how many were written.</summary>
    public static int Write(string dir, IEnumerable<Seed> seeds)
    {
        Directory.CreateDirectory(dir);
        int n = 0;
        foreach (var s in seeds)
        {
            File.WriteAllBytes(Path.Combine(dir, s.Name), s.Bytes);
            n++;
        }
        return n;
    }

    /// <summary>The AFL++ dictionary of the binary harness (fuzz/kmem.dict): BinaryCodec.DictionaryTokens, one a line.</summary>
    public static string BinaryDictionary()
    {
        var sb = new StringBuilder();
        sb.Append("# AFL++ dictionary for the kmem-verify scenario harness (binary scenario encoding).\n");
        sb.Append("# Generated from BinaryCodec.DictionaryTokens() by `kmem-verify corpus dict`; do not edit by hand.\n");
        foreach (string t in BinaryCodec.DictionaryTokens())
            sb.Append(t).Append('\n');
        return sb.ToString();
    }

    /// <summary>The AFL++ dictionary of the parser harness (fuzz/kmem-text.dict): the language's keywords and spellings.</summary>
    public static string TextDictionary()
    {
        var words = new List<string> { "kmem 1\n", "profile ", "ram ", "hole ", "boot ", "mem=", "memmap=", "vmalloc=", "max_order=", " => ", "expect ", "# ", " = ", "@0x", "order=", "align=", "name=", "atomic", "process", "|" };
        words.AddRange(Enum.GetValues<OpKind>().Select(k => k.Keyword() + " "));
        words.AddRange(Profiles.All.Select(p => p.Name));
        words.AddRange(["GFP_KERNEL", "GFP_ATOMIC", "GFP_NOWAIT", "GFP_DMA", "GFP_DMA32", "GFP_HIGHUSER", "__GFP_ZERO", "__GFP_NOWARN"]);
        words.AddRange(["ok", "ENOMEM", "EINVAL", "EBUSY", "BUG"]);
        words.AddRange(["MemTotal", "MemFree", "VmallocTotal", "VmallocUsed", "VmallocChunk", "Free.DMA", "Free.DMA32", "Free.Normal", "Free.HighMem"]);
        words.AddRange(["==", "!=", "<=", ">=", "<", ">"]);
        words.AddRange(["4K", "64K", "1M", "16M", "4G", "1T", "0x1000", "0xfffff000", "18446744073709551615", "$", "#", "!", "@", ","]);
        var sb = new StringBuilder();
        sb.Append("# AFL++ dictionary for the kmem-verify parser harness (.kmem text).\n");
        sb.Append("# Generated by `kmem-verify corpus dict --text`; do not edit by hand.\n");
        foreach (string w in words.Distinct(StringComparer.Ordinal))
            sb.Append(Quote(w)).Append('\n');
        return sb.ToString();
    }

    /// <summary>An AFL++ dictionary value: printable ASCII kept, `"` `\` and the rest as \xNN.</summary>
    public static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (byte b in Encoding.UTF8.GetBytes(s))
        {
            if (b is >= 0x20 and < 0x7F && b != '"' && b != '\\') sb.Append((char)b);
            else sb.Append("\\x").Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return sb.Append('"').ToString();
    }
}
