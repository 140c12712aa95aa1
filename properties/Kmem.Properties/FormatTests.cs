using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Kmem.Scenarios;
using Xunit;
using Outcome = Kmem.Scenarios.Outcome;

namespace Kmem.Properties;

/// <summary>
/// The scenario formats: `.kmem` text (parser and printer), the binary fuzzing encoding, and sizes.
/// </summary>
public class FormatTests
{
    // ------------------------------------------------------------------ generators and helpers

    /// <summary>A byte string that prints itself as hex and as the scenario it decodes to.</summary>
    public sealed record Blob(byte[] Bytes)
    {
        public override string ToString()
        {
            string text;
            try
            {
                text = ScenarioPrinter.Print(BinaryCodec.Decode(Bytes));
            }
            catch (Exception e)
            {
                text = "(decode threw " + e.GetType().Name + ")";
            }
            return $"{Bytes.Length} bytes: {Convert.ToHexString(Bytes)}\n{text}";
        }
    }

    /// <summary>
    /// Random bytes, biased toward what the decoder treats specially: small values (table indices,
    /// back-references), 0x7F and 0xFF (varint escapes), 0x80 (raw flag).
    /// </summary>
    private static readonly Gen<byte> ByteGen = Gen.Frequency(
        (6, Gen.Choose(0, 255).Select(i => (byte)i)),
        (3, Gen.Choose(0, 24).Select(i => (byte)i)),
        (1, Gen.Elements<byte>(0x7F, 0x80, 0xFF, 0x81, 0xFE)));

    /// <summary>A long varint: 2 to 10 bytes with the continuation bit set, the last clear.</summary>
    private static readonly Gen<byte[]> BigVarintGen =
        from n in Gen.Choose(1, 9)
        from body in Gen.ArrayOf(Gen.Choose(0x80, 0xFF).Select(i => (byte)i), n)
        from last in Gen.Choose(1, 0x7F)
        select (byte[])[.. body, (byte)last];

    private static readonly Gen<byte[]> ChunkGen = Gen.Frequency(
        (12, ByteGen.Select(b => new[] { b })),
        (1, BigVarintGen));

    private static Gen<Blob> BlobGen(int maxLength) =>
        Gen.Choose(0, maxLength)
            .SelectMany(n => Gen.ArrayOf(ChunkGen, n))
            .Select(chunks => new Blob(chunks.SelectMany(c => c).Take(maxLength).ToArray()));

    /// <summary>Shrinks by cutting the tail, then by removing one byte.</summary>
    private static IEnumerable<Blob> ShrinkBlob(Blob blob)
    {
        var b = blob.Bytes;
        if (b.Length == 0)
            yield break;
        yield return new Blob(b[..(b.Length / 2)]);
        yield return new Blob(b[..^1]);
        for (int i = 0; i < b.Length && i < 64; i++)
            yield return new Blob([.. b[..i], .. b[(i + 1)..]]);
    }

    private static Arbitrary<Blob> Blobs(int maxLength) => Arb.From(BlobGen(maxLength), ShrinkBlob);

    private static readonly Gen<ulong> UlongGen =
        from hi in Gen.Choose(int.MinValue, int.MaxValue)
        from lo in Gen.Choose(int.MinValue, int.MaxValue)
        from shift in Gen.Choose(0, 63)
        from scale in Gen.Elements(0, 0, 10, 20, 30, 40)
        let raw = ((ulong)(uint)hi << 32 | (uint)lo) >> shift
        select scale == 0 ? raw : (raw >> (scale + 4)) << scale;

    private static string Print(Scenario s) => ScenarioPrinter.Print(s);

    private static Scenario Parse(string text) => ScenarioParser.Parse(text);

    /// <summary>Equal up to line numbers, boot columns, comments and an absent vs explicit default profile.</summary>
    private static bool SameScenario(Scenario a, Scenario b)
    {
        var x = a.Header;
        var y = b.Header;
        if (a.ProfileName != b.ProfileName || x.Version != y.Version
            || !x.Ram.SequenceEqual(y.Ram) || !x.Holes.SequenceEqual(y.Holes)
            || x.Boot.Count != y.Boot.Count || a.Ops.Count != b.Ops.Count)
        {
            return false;
        }
        for (int i = 0; i < x.Boot.Count; i++)
        {
            var p = x.Boot[i];
            var q = y.Boot[i];
            if (p.Kind != q.Kind || p.Value != q.Value || !p.Entries.SequenceEqual(q.Entries))
                return false;
        }
        for (int i = 0; i < a.Ops.Count; i++)
        {
            if (a.Ops[i] with { Line = 0 } != b.Ops[i] with { Line = 0 })
                return false;
        }
        return true;
    }

    // ------------------------------------------------------------------ (1) print/parse stability

    [Property(MaxTest = 500)]
    public Property PrintThenParseGivesTheSameScenario() =>
        Prop.ForAll(Blobs(600), blob =>
        {
            var s = BinaryCodec.Decode(blob.Bytes);
            string text = Print(s);
            var back = ScenarioParser.Parse(text, "decoded.kmem");
            return (Print(back) == text).Label("Print(Parse(Print(s))) == Print(s)")
                .And(SameScenario(s, back).Label("Parse(Print(s)) equals s"));
        });

    [Fact]
    public void HandWrittenTextPrintsStablyAndKeepsTheLeadingComments()
    {
        const string text = """
            # a regression: wrong order
            #   indented detail
            #
            profile linux-4.19-x86_64
            ram 0x100000 63M
            hole 0x9f000 0x61000
            boot memmap=4M$32M,1M@0x2000000,64M mem=0x3000000 max_order=11
            p = alloc_pages 3 GFP_DMA|GFP_KERNEL  # flags in any order
            free_pages p order=2 => BUG
            expect MemFree >= 1M
            """;
        var s = Parse(text);
        Assert.Equal(["a regression: wrong order", "  indented detail", ""], s.Header.Comments);
        string printed = Print(s);
        Assert.Equal(printed, Print(Parse(printed)));
        Assert.True(SameScenario(s, Parse(printed)));
        Assert.Contains("p = alloc_pages 3 GFP_KERNEL|GFP_DMA\n", printed);
        Assert.StartsWith("# a regression: wrong order\n#   indented detail\n#\nprofile linux-4.19-x86_64\n", printed);
    }

    [Fact]
    public void PrinterWritesTheCanonicalForms()
    {
        var s = Parse("""
            ram 0 0x20000000
            ram 1G 4096K
            boot mem=0x4000000 vmalloc=268435456 memmap=0x400000$0x2000000
            m = memblock_alloc 65536 align=0x1000
            p = __get_free_pages 0x2 __GFP_NOWARN|GFP_ATOMIC
            q = ioremap_nocache 0xFEC00000 4096
            free_pages @16777216 order=0x2
            kfree @0
            context atomic
            """);
        Assert.Equal("""
            profile linux-6.8-x86_64
            ram 512M
            ram 1G 4M
            boot mem=64M vmalloc=256M memmap=4M$32M
            m = memblock_alloc 64K align=4K
            p = alloc_pages 2 GFP_ATOMIC|__GFP_NOWARN
            q = ioremap 4076M 4K
            free_pages @16M order=2
            kfree @0x0
            context atomic

            """.ReplaceLineEndings("\n"), Print(s));
        Assert.Null(s.Header.Profile);
    }

    [Fact]
    public void ParserRecordsLinesColumnsAndFields()
    {
        var s = Parse("# c\n\nprofile linux-2.6.18-i386\nboot  mem=64M   memmap=1M#2M,16M\n\nc = kmem_cache_create 100 name=dentry\no = kmem_cache_alloc c\nkmem_cache_free c o\n");
        Assert.Equal(4, s.Header.BootLine);
        Assert.Equal([7, 17], s.Header.Boot.Select(b => b.Column));
        Assert.Equal([new MemmapEntry(MemmapKind.Acpi, 1UL << 20, 2UL << 20), new MemmapEntry(MemmapKind.MemLimit, 16UL << 20, 0)],
            s.Header.Boot[1].Entries);
        Assert.Equal([6, 7, 8], s.Ops.Select(o => o.Line));
        Assert.Equal(new Op { Kind = OpKind.KmemCacheCreate, Bind = "c", Number = 100, Text = "dentry", Line = 6 }, s.Ops[0]);
        Assert.Equal(new Op { Kind = OpKind.KmemCacheFree, Ref = Ref.To("c"), Ref2 = Ref.To("o"), Line = 8 }, s.Ops[2]);
    }

    [Fact]
    public void NamesMayBeReboundAndStayBoundAfterAFree()
    {
        var s = Parse("p = kmalloc 8\nkfree p\nkfree p => BUG\np = kmalloc 16\nkfree p\nkmalloc 32\n");
        Assert.Equal(6, s.Ops.Count);
        Assert.Null(s.Ops[5].Bind);
        Assert.Equal(Outcome.BUG, s.Ops[2].Expected);
    }

    // ------------------------------------------------------------------ (2) the decoder is total

    [Property(MaxTest = 300)]
    public Property DecodeIsTotalOnRandomBytes() =>
        Prop.ForAll(Blobs(4000), blob =>
        {
            var s = BinaryCodec.Decode(blob.Bytes);
            Parse(Print(s)); // throws on failure
            return s.Ops.Count <= BinaryCodec.MaxOps && s.Ops.Count <= blob.Bytes.Length;
        });

    public static TheoryData<string, byte[]> AdversarialInputs()
    {
        var random = new Random(12345);
        var big = new byte[100_000];
        random.NextBytes(big);
        var data = new TheoryData<string, byte[]>
        {
            { "empty", [] },
            { "one 0xFF", [0xFF] },
            { "all 0xFF", Enumerable.Repeat((byte)0xFF, 5000).ToArray() },
            { "all 0x00", new byte[5000] },
            { "all 0x7F", Enumerable.Repeat((byte)0x7F, 5000).ToArray() },
            { "all 0x80", Enumerable.Repeat((byte)0x80, 5000).ToArray() },
            { "counting", Enumerable.Range(0, 10_000).Select(i => (byte)i).ToArray() },
            { "random 100k", big },
            { "header only, raw everything", [0xFF, 0xFF, 0x04, 0x81, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] },
        };
        for (int op = 0; op < 21; op++)
            data.Add($"opcode {op} then 0xFF", [3, 4, 0, (byte)op, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        return data;
    }

    [Theory]
    [MemberData(nameof(AdversarialInputs))]
    public void DecodeIsTotalOnAdversarialBytes(string what, byte[] bytes)
    {
        var s = BinaryCodec.Decode(bytes);
        string text = Print(s);
        var back = ScenarioParser.Parse(text, what);
        Assert.Equal(text, Print(back));
        Assert.True(s.Ops.Count <= BinaryCodec.MaxOps);
        if (bytes.Length > 20_000)
            Assert.Equal(BinaryCodec.MaxOps, s.Ops.Count);
    }

    /// <summary>Raw boot values at their largest, on every profile and layout: all clamped into range.</summary>
    [Fact]
    public void DecodeClampsRawBootValuesOnEveryProfileAndLayout()
    {
        byte[] max = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        for (int profile = 0; profile < 4; profile++)
        {
            for (int layout = 0; layout < 16; layout++)
            {
                byte[] bytes =
                [
                    (byte)profile, (byte)layout, 4,
                    0x80, .. max,                                   // mem=
                    0x82, .. max,                                   // vmalloc=
                    0x83, 0xFF,                                     // max_order=
                    0x81, 3,                                        // memmap= with 4 entries:
                    0x80, .. max, .. max,                           //   nn@ss
                    0x81, .. max, 0x00,                             //   nn$0
                    0x82, 0x00, .. max,                             //   0#ss
                    0x84, .. max,                                   //   nn
                ];
                var s = BinaryCodec.Decode(bytes);
                Assert.Equal(4, s.Header.Boot.Count);
                Assert.Equal(4, s.Header.Boot[3].Entries.Count);
                string text = Print(s);
                Assert.Equal(text, Print(ScenarioParser.Parse(text, $"profile {profile} layout {layout}")));
            }
        }
    }

    [Fact]
    public void EmptyInputDecodesToTheDefaultMachine()
    {
        var s = BinaryCodec.Decode([]);
        Assert.Equal("profile linux-6.8-x86_64\n", Print(s));
    }

    [Fact]
    public void DecodedResultsAreNamedInOrderOfBinding()
    {
        // profile 0, layout 1 (16M), no boot; kmalloc 64, alloc_pages 1, kfree <latest-1>, kfree <latest>
        byte[] bytes = [0, 1, 0, 5, 7, 0, 3, 1, 0, 6, 1, 6, 0];
        Assert.Equal("""
            profile linux-6.8-x86_64
            ram 16M
            p0 = kmalloc 64
            p1 = alloc_pages 1
            kfree p0
            kfree p1

            """.ReplaceLineEndings("\n"), Print(BinaryCodec.Decode(bytes)));
    }

    [Theory]
    // profile 0 (6.8), layout 2 (64M), no boot parameters
    [InlineData(new byte[] { 0, 2, 0 }, 0xF0, 32UL << 20)]
    [InlineData(new byte[] { 0, 2, 0 }, 0xF1, 48UL << 20)]
    [InlineData(new byte[] { 0, 2, 0 }, 0xFF, (64UL << 20) - 1024)]
    // layout 0: the profile's default RAM (1G on 6.8)
    [InlineData(new byte[] { 0, 0, 0 }, 0xF5, (1UL << 30) - (16UL << 20))]
    // layout 2 with mem=16M (boot kind 0, MemTable[0]): R is the smaller mem=
    [InlineData(new byte[] { 0, 2, 1, 0, 0 }, 0xF0, 8UL << 20)]
    // mem=16M then mem=32M: the last one is in force (BootLine), as in MachineConfig
    [InlineData(new byte[] { 0, 2, 2, 0, 0, 0, 1 }, 0xF0, 16UL << 20)]
    // layout 7 (16M at 0 and 32M at 32M): R is the RAM, 48M, not the top of it
    [InlineData(new byte[] { 0, 7, 0 }, 0xF0, 24UL << 20)]
    // layout 3 (384M), unclamped: 384M - 384M/65536
    [InlineData(new byte[] { 0, 3, 0 }, 0xFF, (384UL << 20) - 6144)]
    // layout 6 (4G + 256M): clamped to 1G like every other size
    [InlineData(new byte[] { 0, 6, 0 }, 0xF0, 1UL << 30)]
    // limit form: profile 2.0 (codec index 1): KMALLOC_MAX_SIZE 131048, +1; largest block 128 KiB, +PAGE
    [InlineData(new byte[] { 1, 2, 0 }, 0xE2, 131049UL)]
    [InlineData(new byte[] { 1, 2, 0 }, 0xEB, 131072UL + 4096)]
    // 6.8 (index 0): KMALLOC_MAX_CACHE_SIZE 8 KiB - 1; the largest block after max_order=5 (boot kind 3, v = 5)
    [InlineData(new byte[] { 0, 2, 0 }, 0xE4, 8191UL)]
    [InlineData(new byte[] { 0, 2, 1, 3, 5 }, 0xE9, 128UL << 10)]
    // machine boundaries: 2.6.18 (index 2), layout 4 (1G): lowmem ends at 896M, so VMALLOC_START is
    // 0xF8800000 and VMALLOC_END 0xFF7FE000: the vmalloc that fills the area is 0x06FFE000 - 4K
    [InlineData(new byte[] { 2, 4, 0 }, 0xD1, 0x06FFD000UL)]
    [InlineData(new byte[] { 2, 4, 0 }, 0xD5, 896UL << 20)]
    // vmalloc=256M (boot kind 2, VmallocTable[6]) on the same machine: lowmem ends at 768M,
    // VMALLOC_START 0xF0800000, the area 0x0EFFE000 (corpus/examples/vmalloc-param-2.6.18.kmem: 245752K)
    [InlineData(new byte[] { 2, 4, 1, 2, 6 }, 0xD1, 0x0EFFD000UL)]
    [InlineData(new byte[] { 2, 4, 1, 2, 6 }, 0xD5, 768UL << 20)]
    // 6.8, layout 2: ZONE_DMA ends at 16M, + 1; lowmem is all of RAM (64M); DMA32 above ZONE_DMA is 48M
    [InlineData(new byte[] { 0, 2, 0 }, 0xDA, (16UL << 20) + 1)]
    [InlineData(new byte[] { 0, 2, 0 }, 0xD5, 64UL << 20)]
    [InlineData(new byte[] { 0, 2, 0 }, 0xDD, 48UL << 20)]
    // layout 7: lowmem ends at the top of RAM, 64M; 2.6.18 on 1G: Normal is 16M..896M
    [InlineData(new byte[] { 0, 7, 0 }, 0xD5, 64UL << 20)]
    [InlineData(new byte[] { 2, 4, 0 }, 0xDD, 880UL << 20)]
    // 6.8: the vmalloc area is 32 TiB, so the exact fill clamps to 1G (the form is for 32-bit profiles)
    [InlineData(new byte[] { 0, 2, 0 }, 0xD1, 1UL << 30)]
    public void RelativeSizes_FollowTheMachineAndTheEra(byte[] header, byte sizeByte, ulong want)
    {
        // vmalloc SIZE, then kmalloc SIZE GFP: the relative form reads no varint, so the next op decodes in step
        var s = BinaryCodec.Decode([.. header, (byte)OpKind.Vmalloc, sizeByte, (byte)OpKind.Kmalloc, 7, 0]);
        Assert.Equal(2, s.Ops.Count);
        Assert.Equal(want, s.Ops[0].Number);
        Assert.Equal(OpKind.Kmalloc, s.Ops[1].Kind);
        Assert.Equal(64UL, s.Ops[1].Number);
        var again = BinaryCodec.Decode(BinaryCodec.Encode(s));
        Assert.Equal(Print(s), Print(again));
    }

    [Theory]
    [InlineData(46, ulong.MaxValue)]
    [InlineData(47, ulong.MaxValue - 4095)]
    [InlineData(48, 1UL << 63)]
    [InlineData(46 + 49, ulong.MaxValue)]           // the table index is taken modulo its length
    public void OneSizeByteReachesTheOverflowEdge(byte sizeByte, ulong want)
    {
        // A kmalloc size within a page of 2^64 (8446a4deb6b6) is one byte, not a ten-byte varint.
        var s = BinaryCodec.Decode([0, 0, 0, (byte)OpKind.Kmalloc, sizeByte, 0]);
        Assert.Equal(want, Assert.Single(s.Ops).Number);
        byte[] encoded = BinaryCodec.Encode(s);
        Assert.Equal([0, 0, 0, (byte)OpKind.Kmalloc, (byte)(sizeByte % 49), 0], encoded[^6..]);
    }

    // ------------------------------------------------------------------ (3) Encode

    [Property(MaxTest = 500)]
    public Property EncodeThenDecodePrintsTheSame() =>
        Prop.ForAll(Blobs(600), blob =>
        {
            var s = BinaryCodec.Decode(blob.Bytes);
            var again = BinaryCodec.Decode(BinaryCodec.Encode(s));
            return Print(again) == Print(s);
        });

    [Fact]
    public void HandWrittenScenarioInTheSubsetRoundTrips()
    {
        var s = Parse("""
            profile linux-2.6.18-i386
            ram 0 16M
            ram 32M 32M
            boot mem=0x1234567 memmap=3M$5M,2M@0x7000000,100M vmalloc=0x7000001 max_order=15
            p0 = memblock_alloc 12345 align=3
            mem_init
            p1 = alloc_pages 23 GFP_DMA|__GFP_ZERO
            free_pages p1 order=5
            p2 = kmem_cache_create 0x40000000 align=2G name=cache200
            p3 = kmem_cache_alloc p2 GFP_HIGHUSER
            kmem_cache_free p2 @0xdeadbeef
            kmem_cache_destroy p2
            p4 = vmalloc 999999
            vfree p0
            p5 = request_mem_region 0xfed00000 0x100
            p6 = ioremap 0x1234 1
            iounmap @0xffffffffffffffff
            p7 = dma_alloc_coherent 0 GFP_DMA32
            dma_free_coherent p3
            context atomic
            meminfo
            """);
        var back = BinaryCodec.Decode(BinaryCodec.Encode(s));
        Assert.Equal(Print(s), Print(back));
    }

    [Fact]
    public void ScenarioOutsideTheSubsetEncodesToTheNearestOne()
    {
        var s = Parse("""
            profile linux-4.19-x86_64
            ram 128M
            boot mem=1G mem=2G mem=3G mem=4G mem=5G
            x = kmalloc 2G => ENOMEM
            expect MemFree > 0
            kmem_cache_destroy x
            c = kmem_cache_create 64 name=my_cache
            kmem_cache_alloc x
            free_pages x order=40
            vfree c
            c = vmalloc 1M
            vfree c
            """);
        var back = BinaryCodec.Decode(BinaryCodec.Encode(s));
        Parse(Print(back));
        Assert.Equal("linux-4.19-x86_64", back.Header.Profile);
        Assert.Equal([new Kmem.Scenarios.Range(0, 128UL << 20)], back.Header.Ram);    // the closest layout
        Assert.Equal([1UL << 30, 2UL << 30, 3UL << 30, 4UL << 30], back.Header.Boot.Select(b => b.Value)); // four kept
        var lines = back.Ops.Select(ScenarioPrinter.Print).ToArray();
        Assert.Equal("p0 = kmalloc 1G", lines[0]);                         // clamped, outcome dropped, renamed
        Assert.Equal("meminfo", lines[1]);                                 // expect dropped; no cache to destroy yet
        Assert.Matches("^p1 = kmem_cache_create 64 name=cache[0-9]+$", lines[2]);
        Assert.Equal("p2 = kmem_cache_alloc p1", lines[3]);                // a non-cache argument becomes the latest cache
        Assert.Equal("free_pages p0 order=23", lines[4]);
        Assert.Equal("vfree p1", lines[5]);
        Assert.Equal("p3 = vmalloc 1M", lines[6]);
        Assert.Equal("vfree p3", lines[7]);                                // rebinding follows the latest binding
        Assert.Equal(8, lines.Length);
    }

    [Fact]
    public void DictionaryTokensAreAflEntriesThatDecode()
    {
        var tokens = BinaryCodec.DictionaryTokens();
        Assert.True(tokens.Count >= 30);
        foreach (string t in tokens)
        {
            Assert.Matches("^\"(\\\\x[0-9A-F]{2})+\"$", t);
            byte[] bytes = Convert.FromHexString(t.Replace("\"", "").Replace("\\x", ""));
            var s = BinaryCodec.Decode([0, 0, 0, .. bytes]);
            Parse(Print(s));
        }
        // alloc_pages of order 10 with no GFP, and kmalloc 64, are in there.
        Assert.Contains($"\"\\x{(int)OpKind.AllocPages:X2}\\x0A\\x00\"", tokens);
        Assert.Contains(tokens, t => Print(BinaryCodec.Decode([0, 0, 0, .. Convert.FromHexString(t.Replace("\"", "").Replace("\\x", ""))]))
            .Contains("p0 = kmalloc 64\n", StringComparison.Ordinal));
    }

    // ------------------------------------------------------------------ (4) parse errors

    public static TheoryData<string, int, int, string> MalformedInputs() => new()
    {
        { "p = kmaloc 64", 1, 5, "unknown operation 'kmaloc'; expected one of memblock_alloc" },
        { "profile linux-6.8-x86_64\n\nkmaloc 64", 3, 1, "unknown operation 'kmaloc'" },
        { "p = kmalloc 12Q", 1, 13, "bad size '12Q'" },
        { "p = kmalloc 99999999999999999999", 1, 13, "bad size" },
        { "p = alloc_pages x", 1, 17, "bad order 'x'" },
        { "p = alloc_pages 64", 1, 17, "orders are 0..63" },
        { "p = kmalloc 64 GFP_KERNEL|GFP_FOO", 1, 27, "unknown GFP flag 'GFP_FOO'" },
        { "p = kmalloc 64 GFP_KERNEL | __GFP_ZERO", 1, 27, "joined with '|'" },
        { "p = kmalloc 64 GFP_KERNEL| __GFP_ZERO", 1, 16, "joined with '|'" },
        { "p = kmalloc 64\nkfree q", 2, 7, "name 'q' is used before it is bound" },
        { "kfree p\np = kmalloc 8", 1, 7, "name 'p' is used before it is bound" },
        { "free_pages", 1, 11, "'free_pages' needs a name or @address" },
        { "free_pages 0x1000", 1, 12, "'free_pages' needs a name or @address, not '0x1000'" },
        { "mem_init\nram 64M", 2, 1, "must come before the first operation (line 1)" },
        { "boot mem=1P", 1, 6, "'mem=1P' is beyond the physical address space of linux-6.8-x86_64, which ends at 64T" },
        { "profile linux-2.0-i386\nboot mem=8G", 2, 6, "ends at 4G (32-bit addresses)" },
        { "boot memmap=1M$0xffffffffff000", 1, 6, "memmap= entry 1M$0xffffffffff000 in 'memmap=1M$0xffffffffff000' extends beyond" },
        { "profile linux-4.19-x86_64\nboot max_order=17", 2, 6, "'max_order=17' is out of range: linux-4.19-x86_64 counts MAX_ORDER as exclusive (largest order N-1), so max_order= must be 1..16" },
        { "profile linux-2.6.18-i386\nboot mem=64M max_order=0", 2, 14, "must be 1..15" },
        { "profile linux-2.6.18-i386\nboot max_order=16", 2, 6, "must be 1..15 (the largest block may not exceed a 64M memory section" },
        { "boot max_order=16", 1, 6, "counts MAX_ORDER as inclusive (largest order N), so max_order= must be 0..15" },
        { "ram 64M\nram 32M 64M", 2, 5, "ram bank [32M, 96M) overlaps the bank [0x0, 64M) on line 1" },
        { "ram 32M 64M\nram 0 1G", 2, 5, "overlaps" },
        { "boot mem=64M foo=1", 1, 14, "unknown boot parameter 'foo=1': expected mem=, memmap=, vmalloc= or max_order=" },
        { "boot quiet", 1, 6, "unknown boot parameter 'quiet'" },
        { "kmem 2\nprofile linux-9\nnonsense", 1, 6, "format version 2 is newer than this tool understands (1); upgrade kmem-verify" },
        { "kmem 0", 1, 6, "format version 0 does not exist" },
        { "profile linux-9", 1, 9, "unknown profile 'linux-9'; known: linux-2.0-i386, linux-2.6.18-i386, linux-4.19-x86_64, linux-6.8-x86_64" },
        { "profile linux-6.8-x86_64\nprofile linux-6.8-x86_64", 2, 1, "'profile' may appear only once" },
        { "boot mem=1G\nboot mem=2G", 2, 1, "'boot' may appear only once" },
        { "ram 0", 1, 5, "ram bank of size 0" },
        { "hole 0xA0000 0", 1, 14, "hole of size 0" },
        { "ram 0xffffffffffffffff 2", 1, 24, "runs past the end of the 64-bit address space" },
        { "profile linux-2.6.18-i386\nram 3G 2G", 2, 8, "ram bank [3G, 5G) extends beyond the physical address space of linux-2.6.18-i386" },
        { "hole 64T 4K", 1, 6, "hole [64T, 0x400000001000) starts beyond" },
        { "ram 200G\nram 1T 100G", 2, 8, "total RAM of 300G is more than 256G, the most this tool can represent" },
        { "ram 1G\nboot memmap=300G@2G", 2, 6, "the most this tool can represent" },
        { "profile linux-2.6.18-i386\nboot vmalloc=1G", 2, 6, "'vmalloc=1G' would leave no directly mapped memory on linux-2.6.18-i386" },
        { "boot memmap=exactmap", 1, 6, "bad memmap= entry 'exactmap'" },
        { "boot mem=", 1, 6, "bad size in 'mem='" },
        { "p = kfree q", 1, 1, "'kfree' produces no result to bind to 'p'" },
        { "P = kmalloc 8", 1, 1, "'P' is not a valid name" },
        { "p = kmalloc 8 => OK", 1, 18, "unknown outcome 'OK'" },
        { "p = kmalloc 8 =>", 1, 17, "expected an outcome after '=>'" },
        { "p = kmalloc 8 => ok ok", 1, 21, "unexpected 'ok' after the outcome" },
        { "kfree @zz", 1, 7, "bad address '@zz'" },
        { "kmem_cache_destroy @0x1000", 1, 20, "a raw address may stand only for what is freed" },
        { "p = kmalloc 8 align=8", 1, 15, "'kmalloc' takes no option 'align='" },
        { "p = kmalloc 8\nfree_pages p order=99", 2, 14, "order 99 is out of range" },
        { "p = kmalloc 8\nfree_pages p order=1 order=1", 2, 22, "'order=' is given twice" },
        { "mem_init now", 1, 10, "unexpected 'now'" },
        { "context sleepy", 1, 9, "unknown context 'sleepy'" },
        { "expect MemUsed == 1M", 1, 8, "unknown meminfo field 'MemUsed'" },
        { "expect MemFree =< 1M", 1, 16, "unknown comparison '=<'" },
        { "expect MemFree >= 1M => ok", 1, 22, "'expect' takes no '=> OUTCOME'" },
        { "ram = kmalloc 8\nram 1G", 2, 1, "must come before the first operation" },
    };

    [Theory]
    [MemberData(nameof(MalformedInputs))]
    public void MalformedInputIsRefusedWithItsPosition(string text, int line, int column, string phrase)
    {
        var e = Assert.Throws<ScenarioException>(() => ScenarioParser.Parse(text, "bad.kmem"));
        Assert.Contains(phrase, e.Reason, StringComparison.Ordinal);
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.Equal($"bad.kmem:{line}:{column}: {e.Reason}", e.Message);
        Assert.Equal("bad.kmem", e.File);
    }

    [Fact]
    public void ErrorWithoutAFileNamesTheInput()
    {
        var e = Assert.Throws<ScenarioException>(() => ScenarioParser.Parse("\n  kfree p"));
        Assert.Equal("<input>:2:9: name 'p' is used before it is bound", e.Message[..e.Message.IndexOf(" (", StringComparison.Ordinal)]);
    }

    [Theory]
    [InlineData("ram 1G\nboot mem=64T")]                                  // mem= may equal the limit
    [InlineData("profile linux-2.6.18-i386\nboot vmalloc=0x3fffffff")]   // just below 1G
    [InlineData("boot vmalloc=1T")]                                     // 64-bit: ignored, accepted
    [InlineData("profile linux-4.19-x86_64\nboot max_order=1 max_order=16")]
    [InlineData("boot max_order=0 max_order=15")]
    [InlineData("ram 256G")]                                            // exactly the limit
    [InlineData("ram 128G\nram 128G 128G")]                             // adjacent banks
    [InlineData("profile linux-2.0-i386\nram 0 4G\nhole 4095M 1M")]
    [InlineData("boot memmap=4M#32M  # the ACPI form; '#' inside a token is not a comment")]
    [InlineData("kmem 1\nprofile linux-2.0-i386")]
    public void ValidEdgeCasesAreAccepted(string text) => Parse(text);

    // ------------------------------------------------------------------ (5) the format document

    /// <summary>The header example of scenario-format.md, verbatim.</summary>
    private const string FormatHeaderExample = """
        kmem 1                          # format version; optional, 1 when absent
        profile linux-6.8-x86_64        # kernel profile: page size, MAX_ORDER, zones, limits; see `kmem-verify profiles`
        ram 512M                        # a RAM bank from physical address 0; `ram START SIZE` for a bank elsewhere
        hole 0xA0000 384K               # firmware hole inside a bank: not RAM, never allocatable
        boot mem=64M memmap=4M$32M vmalloc=256M
        """;

    /// <summary>Every operation of scenario-format.md, with its options, aliases and outcomes.</summary>
    private const string FormatOperationsExample = """
        m = memblock_alloc 64K align=4K     # boot-time allocation; only before mem_init
        n = memblock_alloc 4K
        memblock_free m
        mem_init                            # boot ends
        p = alloc_pages 2 GFP_KERNEL|__GFP_ZERO
        q = __get_free_pages 0
        free_pages p
        free_pages q order=0
        k = kmalloc 100 GFP_ATOMIC|__GFP_NOWARN
        kfree k
        c = kmem_cache_create 192 align=64 name=my_cache
        d = kmem_cache_create 32
        o = kmem_cache_alloc c GFP_NOWAIT
        kmem_cache_free c o
        kmem_cache_destroy c
        v = vmalloc 1M
        vfree v
        r = request_mem_region 0xA0000 64K
        release_mem_region r
        i = ioremap 0xFEC00000 4K
        j = ioremap_nocache 0xFEE00000 4K
        iounmap i
        a = dma_alloc_coherent 4K GFP_DMA
        b = dma_alloc_coherent 4K GFP_DMA32
        h = alloc_pages 0 GFP_HIGHUSER
        dma_free_coherent a
        context atomic
        context process
        meminfo
        free_pages @0x1000000 order=2
        kfree @0xffff888000001000
        vfree @0xffffc90000000000
        kfree k => BUG
        e = alloc_pages 11 => EINVAL
        f = alloc_pages 10 => ENOMEM
        g = request_mem_region 0xA0000 4K => EBUSY
        kfree @0 => ok
        expect VmallocTotal == 638968K
        expect MemFree >= 100M
        expect MemTotal != 0
        expect VmallocUsed < 1G
        expect VmallocChunk <= 1G
        expect Free.DMA > 0
        expect Free.DMA32 >= 0
        expect Free.Normal >= 0
        expect Free.HighMem == 0
        """;

    [Fact]
    public void TheFormatDocumentExamplesParse()
    {
        var s = Parse(FormatHeaderExample + "\n" + FormatOperationsExample);
        var h = s.Header;
        Assert.Equal("linux-6.8-x86_64", h.Profile);
        Assert.Equal([new Kmem.Scenarios.Range(0, 512UL << 20)], h.Ram);
        Assert.Equal([new Kmem.Scenarios.Range(0xA0000, 384UL << 10)], h.Holes);
        Assert.Equal([BootParamKind.Mem, BootParamKind.Memmap, BootParamKind.Vmalloc], h.Boot.Select(b => b.Kind));
        Assert.Equal([new MemmapEntry(MemmapKind.Reserved, 4UL << 20, 32UL << 20)], h.Boot[1].Entries);
        Assert.Equal(5, h.BootLine);
        Assert.Empty(h.Comments);
        Assert.Equal(46, s.Ops.Count);
        Assert.Equal(OpKind.AllocPages, s.Ops[5].Kind);
        Assert.Equal(OpKind.Ioremap, s.Ops[20].Kind);
        Assert.Equal(new Op { Kind = OpKind.FreePages, Ref = Ref.At(0x1000000), Order = 2, Line = 35 }, s.Ops[29]);
        Assert.Equal(new Op { Kind = OpKind.Expect, Field = "VmallocTotal", Cmp = Cmp.Eq, Number = 638968UL << 10, Line = 43 }, s.Ops[37]);
        Assert.Equal(Enum.GetValues<Outcome>(), s.Ops.Where(o => o.Expected is not null).Select(o => o.Expected!.Value).Order());
        Assert.Equal(Enum.GetValues<Cmp>(), s.Ops.Where(o => o.Kind == OpKind.Expect).Select(o => o.Cmp).Distinct().Order());
        Assert.Equal(9, s.Ops.Count(o => o.Kind == OpKind.Expect));

        string printed = Print(s);
        Assert.Equal(printed, Print(Parse(printed)));
        Assert.True(SameScenario(s, Parse(printed)));
    }

    [Theory]
    [InlineData("expect VmallocTotal == 638968K", "VmallocTotal", Cmp.Eq, 638968UL << 10)]
    [InlineData("expect MemFree >= 100M", "MemFree", Cmp.Ge, 100UL << 20)]
    public void TheFormatDocumentExpectLinesParse(string line, string field, Cmp cmp, ulong value)
    {
        var op = Assert.Single(Parse(line).Ops);
        Assert.Equal((OpKind.Expect, field, cmp, value), (op.Kind, op.Field, op.Cmp, op.Number));
    }

    // ------------------------------------------------------------------ (6) sizes

    [Property(MaxTest = 1000)]
    public Property SizesRoundTrip() =>
        Prop.ForAll(Arb.From(UlongGen), v =>
        {
            bool size = Sizes.TryParse(Sizes.Format(v), out ulong a) && a == v;
            bool address = Sizes.TryParse(Sizes.FormatAddress(v), out ulong b) && b == v;
            bool lower = Sizes.TryParse(Sizes.Format(v).ToLowerInvariant(), out ulong c) && c == v;
            return size.Label("Format").And(address.Label("FormatAddress")).And(lower.Label("lower case"));
        });

    [Theory]
    [InlineData("0", 0UL)]
    [InlineData("4096", 4096UL)]
    [InlineData("4K", 4096UL)]
    [InlineData("4k", 4096UL)]
    [InlineData("0x100000", 1UL << 20)]
    [InlineData("0X10m", 16UL << 20)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("2T", 2UL << 40)]
    [InlineData("1P", 1UL << 50)]
    [InlineData("1e", 1UL << 60)]
    [InlineData("15E", 15UL << 60)]
    [InlineData("0x1E", 0x1EUL)]       // as in memparse: E is a hex digit there
    [InlineData("0xffffffffffffffff", ulong.MaxValue)]
    [InlineData("18446744073709551615", ulong.MaxValue)]
    [InlineData("0xFFFFFFFFFFFFFK", 0xFFFFFFFFFFFFFUL << 10)]
    public void SizesParse(string text, ulong expected)
    {
        Assert.True(Sizes.TryParse(text, out ulong v));
        Assert.Equal(expected, v);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0x")]
    [InlineData("K")]
    [InlineData("4KB")]
    [InlineData("4 K")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData(" 4K")]
    [InlineData("1.5M")]
    [InlineData("16E")]                      // 2^64: overflow
    [InlineData("18446744073709551616")]
    [InlineData("0x10000000000000000")]
    [InlineData("0x40000000000000K")]
    [InlineData("0xg")]
    [InlineData("12Q")]
    public void SizesRefuse(string text) => Assert.False(Sizes.TryParse(text, out _));

    [Theory]
    [InlineData(0UL, "0", "0x0")]
    [InlineData(1UL, "1", "0x1")]
    [InlineData(1000UL, "1000", "0x3e8")]
    [InlineData(1536UL, "1536", "0x600")]
    [InlineData(4096UL, "4K", "0x1000")]
    [InlineData(65535UL, "65535", "0xffff")]
    [InlineData(65537UL, "0x10001", "0x10001")]
    [InlineData(0xA0000UL, "640K", "0xa0000")]
    [InlineData(1UL << 20, "1M", "1M")]
    [InlineData(33UL << 20, "33M", "33M")]
    [InlineData(3UL << 30, "3G", "3G")]
    [InlineData((1UL << 30) + (1UL << 20), "1025M", "1025M")]
    [InlineData(1UL << 50, "1024T", "1024T")]
    [InlineData(ulong.MaxValue, "0xffffffffffffffff", "0xffffffffffffffff")]
    public void SizesFormat(ulong value, string size, string address)
    {
        Assert.Equal(size, Sizes.Format(value));
        Assert.Equal(address, Sizes.FormatAddress(value));
    }
}
