using System.Globalization;
using System.Text;

namespace Kmem.Scenarios;

// The binary scenario encoding, for AFL++ (architecture.md: "a compact binary encoding for fuzzing
// whose decoder is total").
//
// TOTALITY. Every byte string, the empty one included, decodes to a scenario that ScenarioPrinter
// prints and ScenarioParser parses back without error. Reading past the end yields 0 bytes; every
// value is taken modulo a table size or clamped into the range the parser accepts; at most 512
// operations are decoded and the bytes after them are ignored. Nothing throws.
//
// LAYOUT (all multi-byte numbers are LEB128 varints: 7 bits a byte, low first, a set top bit means
// "more"; at most 10 bytes are read, bits beyond 64 are dropped).
//
//   header
//     byte  profile     index into [linux-6.8-x86_64 (the default), then Profiles.All in order
//                       without it], modulo their count
//     byte  layout      RAM layout, index into Layouts below modulo its length; a layout that does
//                       not fit the profile's physical address space becomes layout 0
//     byte  bootCount   number of boot parameters, modulo 5 (0..4)
//     bootCount times a boot parameter:
//       byte  k         kind = k & 3: 0 mem=, 1 memmap=, 2 vmalloc=, 3 max_order=; bit 7 = raw
//       mem=            raw: varint value; else byte index into MemTable. Clamped to the profile's
//                       physical address limit.
//       vmalloc=        raw: varint value; else byte index into VmallocTable. On 32-bit profiles
//                       clamped below 1G.
//       max_order=      byte v: lo + v % (hi - lo + 1), with (lo, hi) = Profile.MaxOrderParamRange.
//       memmap=         byte n: 1 + n % 4 entries, each:
//         byte e        form = (e & 0x7F) % 5: 0 nn@ss, 1 nn$ss, 2 nn#ss, 3 nn!ss, 4 nn; bit 7 = raw
//         raw           varint nn, then (except for the nn form) varint ss
//         table         byte index into MemmapTable (the nn form: into MemTable)
//                       Clamped: ss to the physical limit, nn so that ss+nn stays within it; for
//                       nn@ss (usable RAM) the limit is 8G, so that RAM never exceeds
//                       Sizes.MaxRamBytes; the nn form to the physical limit.
//   operations, until the input ends or 512 have been decoded:
//     byte  opcode      OpKind = opcode % 21 (every kind but Expect, in enum order), then its
//                       arguments:
//       memblock_alloc      SIZE ALIGN            mem_init, meminfo       (none)
//       memblock_free       REF                   alloc_pages             ORDER GFP
//       free_pages          REF FORDER            kmalloc                 SIZE GFP
//       kfree               REF                   kmem_cache_create       SIZE ALIGN CNAME
//       kmem_cache_alloc    CACHE GFP             kmem_cache_free         CACHE REF
//       kmem_cache_destroy  CACHE                 vmalloc                 SIZE
//       vfree               REF                   request_mem_region      ADDR SIZE
//       release_mem_region  REF                   ioremap                 ADDR SIZE
//       iounmap             REF                   dma_alloc_coherent      SIZE GFP
//       dma_free_coherent   REF                   context                 byte: bit 0 = atomic
//   SIZE   byte s: s < 0x80: SizeTable[s % length]; 0xF0..0xFF: relative to the machine,
//          R - (R >> (s - 0xEF)), i.e. R/2, 3R/4, ... R - R/65536, where R is the RAM of the layout
//          (the profile's default RAM for layout 0), or the effective mem= when it is smaller;
//          0xE0..0xEF: an era limit plus a delta, L[i / 4] + D[i % 4] with i = s - 0xE0,
//          L = (KMALLOC_MAX_SIZE, KMALLOC_MAX_CACHE_SIZE, the largest page block, the slab object
//          limit or else the largest block) of the profile, the largest order following a decoded
//          max_order=, and D = (-1, 0, +1, +PAGE_SIZE): the sizes where the limits bugs live;
//          0xD0..0xDF: the same with the machine's boundaries, i = s - 0xD0, L = (the vmalloc area
//          less its guard page, i.e. a vmalloc that exactly fills it (32-bit profiles: on 64-bit
//          the area is 32 TiB and the clamp makes it 1G); the end of lowmem, or of RAM on 64-bit;
//          the end of ZONE_DMA; the size of the zone above ZONE_DMA, up to lowmem), computed from
//          the profile, the layout's top of RAM and the effective mem= / vmalloc= (BootLine) the way
//          the kernel does, without holes or memmap= ranges: a near miss is still a useful size.
//          Every form's value is clamped like a varint's: to 1G unless it is 2^63 or more (an empty
//          vmalloc area, L = 0, gives L - 1 = 2^64 - 1, kept as it is);
//          else (0x80..0xCF) a varint, clamped to 1G unless it is 2^63 or more (kept as it is:
//          sizes whose rounding overflows, like kmalloc(-2800), are refused without allocating
//          anything, and the overflow edge is where bugs live). The relative form reaches "nearly
//          all of memory", where zone fallback, watermark and totalram limits decide, on any
//          machine: a fixed table cannot, because that boundary moves with the RAM.
//   ALIGN  byte a: 0: no align=; 1..0x7F: 1 << ((a - 1) % 32); else a varint, clamped to 4G
//          (so 0 and non-powers of two can be written).
//   ORDER  byte o: o % 24.        FORDER  byte o: 0: no order=; else order=(o - 1) % 24.
//   GFP    byte g: the Gfp bits as they are (Gfp has exactly 8 flags); 0 means none written.
//   ADDR   byte a: k = a & 0x7F; k == 0x7F: a varint, clamped to 2^48; else AddrTable[k % length].
//   CNAME  byte c: 0: no name=; else name=cacheC.
//   REF    byte r: if bit 7 is clear and results were bound before: back-index r (r == 0x7F: a
//          varint follows) modulo the number of results bound so far, 0 = the latest. Otherwise a
//          raw address: k = r & 0x7F; k == 0x7F: a varint (any value); else AddrTable[k % length]
//          (AddrTable[0] is 0, NULL).
//   CACHE  byte c: back-index c & 0x7F (0x7F: a varint follows) modulo the number of caches
//          created so far (kmem_cache_create results), 0 = the latest. With no cache yet the
//          whole operation decodes as `meminfo` (its argument bytes are still consumed).
// Every operation that produces a result is bound, to p0, p1, ... in order. No `expect` lines
// and no `=> OUTCOME` are generated: a fuzzer that wrote its own expectations would only find
// its own mistakes.
//
// ENCODE. Decode(Encode(s)) prints exactly as s for every s that Decode produced, and for any
// scenario with: a known profile; no comments; RAM/holes equal to one of Layouts (or none);
// at most 4 boot parameters and 4 entries per memmap=, with values inside the clamps above;
// every producing operation bound, with names p0, p1, ... in order of binding; no expect lines
// and no outcomes; cache arguments naming kmem_cache_create results; sizes up to 1G or from 2^63, orders up
// to 23, align= up to 4G, cache names cacheN (1 <= N <= 255); at most 512 operations. Anything
// else is encoded as the nearest representable value: a layout with the closest total RAM,
// clamped numbers, renamed results, dropped expectations, extra boot parameters dropped, a cache
// argument that is not a cache becoming the latest cache (or the op becoming meminfo when there
// is none), a reference to a name that is no longer bound becoming NULL, other cache names
// hashed into cache1..cache255.

/// <summary>
/// The total binary encoding of scenarios for fuzzing; see the comment at the top of this file for
/// the exact layout.
/// </summary>
public static class BinaryCodec
{
    public const int MaxOps = 512;
    public const int MaxBootParams = 4;
    public const int MaxMemmapEntries = 4;
    public const ulong MaxOpSize = 1UL << 30;

    /// <summary>Sizes from here on are decoded as they are (see SIZE above).</summary>
    public const ulong HugeSizes = 1UL << 63;

    /// <summary>SIZE bytes from here on are relative to the machine's RAM (see SIZE above).</summary>
    public const byte RelativeSizes = 0xF0;

    /// <summary>SIZE bytes from here to <see cref="RelativeSizes"/> are an era limit or a machine boundary plus a delta (see SIZE above).</summary>
    public const byte LimitSizes = 0xD0;

    private static ulong ClampSize(ulong v) => v >= HugeSizes ? v : Math.Min(v, MaxOpSize);
    public const ulong MaxAlign = 1UL << 32;
    public const ulong MaxRegionStart = 1UL << 48;
    public const ulong UsableMemmapLimit = 8UL << 30;
    public const int OrderModulus = 24;

    private const int OpcodeCount = (int)OpKind.Expect; // every kind before Expect

    private const ulong K = 1UL << 10, M = 1UL << 20, G = 1UL << 30;

    private static readonly Profile[] CodecProfiles = BuildProfiles();

    private sealed record Layout(Range[] Ram, Range[] Holes);

    private static readonly Layout[] Layouts =
    [
        new([], []),                                                    // the profile's default
        new([new(0, 16 * M)], []),
        new([new(0, 64 * M)], []),
        new([new(0, 384 * M)], []),
        new([new(0, 1 * G)], []),
        new([new(0, 2 * G)], []),                                       // HighMem on 2.6.18
        new([new(0, 4 * G + 256 * M)], []),                             // crosses 4G (64-bit only)
        new([new(0, 16 * M), new(32 * M, 32 * M)], []),                 // two banks, a gap
        new([new(0, 64 * M)], [new(0x9F000, 0x61000), new(0x1234000, 0x5000)]),
        new([new(0, 128 * M)], [new(0xA0000, 384 * K)]),                // the legacy hole, explicit
        new([new(0, 4 * M)], []),
        new([new(0x100000, 0x7F00000), new(0x8001000, 0x3FF000)], []),  // unaligned second bank
        new([new(0, 3 * G), new(4 * G, 1 * G)], []),                    // PCI gap (64-bit only)
        new([new(0, 17 * M)], [new(0xFFF000, 0x2000)]),                 // hole across the DMA end
        new([new(0, 1 * M), new(2 * M, 6 * M), new(16 * M, 16 * M)], []),
        new([new(0x5000, 0x3FFB000)], []),
    ];

    private static readonly ulong[] MemTable =
    [
        16 * M, 32 * M, 64 * M, 100 * M, 128 * M, 256 * M, 512 * M, 896 * M,
        1 * G, 2 * G, 3 * G, 4 * G, 0x1234000, 17 * M + 4 * K, 1 * M, 2 * M + 0x800,
    ];

    private static readonly ulong[] VmallocTable =
    [
        0, 4 * M, 8 * M, 64 * M, 128 * M, 192 * M, 256 * M, 512 * M, 768 * M, 0x3FFFF000, 900 * M, 1 * M + 1,
    ];

    private static readonly (ulong Size, ulong Start)[] MemmapTable =
    [
        (4 * M, 32 * M), (1 * M, 0), (64 * K, 0x9F000), (16 * M, 16 * M), (4 * K, 1 * M), (0x1234, 0x5678),
        (128 * M, 768 * M), (1 * G, 4 * G), (2 * M, 0x1FF000), (8 * M, 60 * M), (1 * M, 0xF80000),
        (32 * M, 4 * G - 32 * M),
    ];

    private static readonly ulong[] AddrTable =
    [
        0, 0x1000, 0x9F000, 0xA0000, 0xC0000, 0xF0000, 0x100000, 0x200000, 0x400000, 0x7FF000,
        0x1000000, 0x1001000, 0x3FF000, 0x8000000, 0x38000000, 0x40000000, 0xE0000000, 0xFEC00000,
        0xFEE00000, 0xFFFFF000, 0x100000000, 0x123,
    ];

    private static readonly ulong[] SizeTable =
    [
        0, 1, 8, 16, 24, 32, 33, 64, 65, 96, 100, 128, 192, 200, 256, 512, 1000, 1024, 2048, 3000,
        4 * K, 4 * K + 1, 8 * K, 8 * K + 1, 12 * K, 16 * K, 32 * K, 64 * K, 128 * K - 16, 128 * K - 15,
        128 * K, 128 * K + 1, 256 * K, 512 * K, 1 * M, 2 * M, 4 * M, 4 * M + 1, 8 * M, 16 * M, 32 * M,
        64 * M, 128 * M, 256 * M, 512 * M, 1 * G,
        // The overflow edge (kept, as varints from 2^63 are): -1, -PAGE_SIZE (a size within a page of
        // 2^64, whose PAGE_ALIGN wraps to 0: 8446a4deb6b6), 2^63 (whose doubling or get_order wraps).
        // One byte away from any table size, where a varint needs ten bytes to agree.
        ulong.MaxValue, ulong.MaxValue - 4 * K + 1, 1UL << 63,
    ];

    private static readonly string[] Names = BuildNames();

    // ------------------------------------------------------------------------------------ decode

    /// <summary>Decodes any bytes into a valid scenario. Never throws.</summary>
    public static Scenario Decode(ReadOnlySpan<byte> data)
    {
        var d = new Decoder(data);

        var profile = CodecProfiles[d.Byte() % CodecProfiles.Length];
        ulong limit = profile.PhysAddressLimit;
        var layout = Layouts[d.Byte() % Layouts.Length];
        if (!Fits(layout, limit))
            layout = Layouts[0];

        int bootCount = d.Byte() % (MaxBootParams + 1);
        var boot = new List<BootParam>(bootCount);
        for (int i = 0; i < bootCount; i++)
            boot.Add(DecodeBootParam(ref d, profile));
        var line = BootLine.Of(boot);
        d.Ram = RamOf(layout, profile, line);
        d.Limits = [.. BoundariesOf(layout, profile, line), .. LimitsOf(profile, line)];
        d.PageSize = profile.PageSize;

        var ops = new List<Op>();
        var caches = new List<int>();  // binding index of each kmem_cache_create result
        int bindings = 0;
        while (d.Pos < data.Length && ops.Count < MaxOps)
        {
            var kind = (OpKind)(d.Byte() % OpcodeCount);
            string name = Names[bindings]; // the name this op binds, if it produces a result
            Op op;
            switch (kind)
            {
                case OpKind.MemblockAlloc:
                    op = new Op { Kind = kind, Bind = name, Number = d.Size(), Align = d.Align() };
                    break;
                case OpKind.AllocPages:
                    op = new Op { Kind = kind, Bind = name, Number = (ulong)(d.Byte() % OrderModulus), Gfp = (Gfp)d.Byte() };
                    break;
                case OpKind.FreePages:
                {
                    var r = d.ObjectRef(bindings);
                    byte o = d.Byte();
                    op = new Op { Kind = kind, Ref = r, Order = o == 0 ? null : (o - 1) % OrderModulus };
                    break;
                }
                case OpKind.Kmalloc:
                case OpKind.DmaAllocCoherent:
                    op = new Op { Kind = kind, Bind = name, Number = d.Size(), Gfp = (Gfp)d.Byte() };
                    break;
                case OpKind.KmemCacheCreate:
                {
                    ulong size = d.Size();
                    ulong? align = d.Align();
                    byte c = d.Byte();
                    op = new Op { Kind = kind, Bind = name, Number = size, Align = align, Text = c == 0 ? null : CacheName(c) };
                    break;
                }
                case OpKind.KmemCacheAlloc:
                {
                    var cache = d.CacheRef(caches);
                    var gfp = (Gfp)d.Byte();
                    op = cache is null ? new Op { Kind = OpKind.Meminfo } : new Op { Kind = kind, Bind = name, Ref = cache, Gfp = gfp };
                    break;
                }
                case OpKind.KmemCacheFree:
                {
                    var cache = d.CacheRef(caches);
                    var obj = d.ObjectRef(bindings);
                    op = cache is null ? new Op { Kind = OpKind.Meminfo } : new Op { Kind = kind, Ref = cache, Ref2 = obj };
                    break;
                }
                case OpKind.KmemCacheDestroy:
                {
                    var cache = d.CacheRef(caches);
                    op = cache is null ? new Op { Kind = OpKind.Meminfo } : new Op { Kind = kind, Ref = cache };
                    break;
                }
                case OpKind.Vmalloc:
                    op = new Op { Kind = kind, Bind = name, Number = d.Size() };
                    break;
                case OpKind.RequestMemRegion:
                case OpKind.Ioremap:
                {
                    ulong start = d.Address();
                    op = new Op { Kind = kind, Bind = name, Number = start, Number2 = d.Size() };
                    break;
                }
                case OpKind.Context:
                    op = new Op { Kind = kind, Atomic = (d.Byte() & 1) != 0 };
                    break;
                case OpKind.MemblockFree:
                case OpKind.Kfree:
                case OpKind.Vfree:
                case OpKind.ReleaseMemRegion:
                case OpKind.Iounmap:
                case OpKind.DmaFreeCoherent:
                    op = new Op { Kind = kind, Ref = d.ObjectRef(bindings) };
                    break;
                default: // MemInit, Meminfo
                    op = new Op { Kind = kind };
                    break;
            }
            if (op.Bind is not null)
            {
                if (op.Kind == OpKind.KmemCacheCreate)
                    caches.Add(bindings);
                bindings++;
            }
            ops.Add(op);
        }

        var header = new Header
        {
            Profile = profile.Name,
            Ram = layout.Ram,
            Holes = layout.Holes,
            Boot = boot,
        };
        return new Scenario(header, ops);
    }

    /// <summary>R of the relative SIZE form: the layout's RAM (the profile's default for layout 0), or mem= when smaller.</summary>
    private static ulong RamOf(Layout layout, Profile profile, BootLine line)
    {
        ulong ram = 0;
        foreach (var r in layout.Ram)
            ram += r.Size;
        if (layout.Ram.Length == 0)
            ram = profile.DefaultRam;
        return line.MemLimit is { } mem && mem < ram ? mem : ram;
    }

    /// <summary>The era limits of the 0xE0..0xEF SIZE form (see SIZE above), for this profile and boot line.</summary>
    private static ulong[] LimitsOf(Profile profile, BootLine line)
    {
        int maxOrder = line.MaxOrder ?? profile.MaxOrder;
        ulong largest = profile.PageSize << (profile.MaxOrderInclusive ? maxOrder : maxOrder - 1);
        return [profile.KmallocMaxFixed ?? largest, profile.KmallocMaxCacheSize, largest, profile.SlabObjectLimit ?? largest];
    }

    /// <summary>The machine boundaries of the 0xD0..0xDF SIZE form (see SIZE above).</summary>
    private static ulong[] BoundariesOf(Layout layout, Profile profile, BootLine line)
    {
        ulong top = 0;
        foreach (var r in layout.Ram)
            top = Math.Max(top, r.End);
        if (layout.Ram.Length == 0)
            top = profile.DefaultRam;
        if (line.MemLimit is { } mem && mem < top)
            top = mem;
        ulong page = profile.PageSize, area, lowmemEnd = top;
        if (profile.LowmemLimit is { } limit)
        {
            // arch/x86 (i386): the lowmem limit moves with vmalloc= where it is honoured; VMALLOC_START =
            // roundup(PAGE_OFFSET + lowmem end + VMALLOC_OFFSET, VMALLOC_OFFSET), VMALLOC_END fixed.
            if (profile.VmallocParamHonoured && line.Vmalloc is { } v && v < 1UL << 30)
                limit = (1UL << 30) - v;
            lowmemEnd = Math.Min(top, limit);
            ulong off = profile.VmallocOffset32;
            ulong start = Math.Min((profile.PageOffset32 + lowmemEnd + off + off - 1) / off * off, profile.VmallocEnd32);
            area = profile.VmallocEnd32 - start;
        }
        else
        {
            area = profile.VmallocTotal64;
        }
        // The zone above ZONE_DMA (DMA32 on 64-bit, Normal on i386), up to lowmem: an allocation of
        // that size drains it, which is where zone fallback and the watermarks decide.
        ulong secondEnd = Math.Min(lowmemEnd, profile.Dma32ZoneEnd ?? lowmemEnd);
        ulong secondZone = secondEnd > profile.DmaZoneEnd ? secondEnd - profile.DmaZoneEnd : 0;
        return [area > page ? area - page : 0, lowmemEnd, profile.DmaZoneEnd, secondZone];
    }

    private static BootParam DecodeBootParam(ref Decoder d, Profile profile)
    {
        ulong limit = profile.PhysAddressLimit;
        byte k = d.Byte();
        bool raw = (k & 0x80) != 0;
        switch (k & 3)
        {
            case 0:
            {
                ulong v = raw ? d.Varint() : MemTable[d.Byte() % MemTable.Length];
                return new BootParam { Kind = BootParamKind.Mem, Value = Math.Min(v, limit) };
            }
            case 1:
            {
                int n = 1 + d.Byte() % MaxMemmapEntries;
                var entries = new MemmapEntry[n];
                for (int i = 0; i < n; i++)
                    entries[i] = DecodeMemmapEntry(ref d, limit);
                return new BootParam { Kind = BootParamKind.Memmap, Entries = entries };
            }
            case 2:
            {
                ulong v = raw ? d.Varint() : VmallocTable[d.Byte() % VmallocTable.Length];
                return new BootParam { Kind = BootParamKind.Vmalloc, Value = ClampVmalloc(v, profile) };
            }
            default:
            {
                byte v = d.Byte();
                var (lo, hi) = profile.MaxOrderParamRange;
                ulong n = (ulong)(lo + v % (hi - lo + 1));
                return new BootParam { Kind = BootParamKind.MaxOrder, Value = n };
            }
        }
    }

    private static MemmapEntry DecodeMemmapEntry(ref Decoder d, ulong limit)
    {
        byte e = d.Byte();
        var kind = (MemmapKind)((e & 0x7F) % 5);
        bool raw = (e & 0x80) != 0;
        if (kind == MemmapKind.MemLimit)
        {
            ulong v = raw ? d.Varint() : MemTable[d.Byte() % MemTable.Length];
            return new MemmapEntry(kind, Math.Min(v, limit), 0);
        }
        ulong size, start;
        if (raw)
        {
            size = d.Varint();
            start = d.Varint();
        }
        else
        {
            (size, start) = MemmapTable[d.Byte() % MemmapTable.Length];
        }
        return ClampMemmap(new MemmapEntry(kind, size, start), limit);
    }

    private static MemmapEntry ClampMemmap(MemmapEntry e, ulong physLimit)
    {
        if (e.Kind == MemmapKind.MemLimit)
            return e with { Size = Math.Min(e.Size, physLimit), Start = 0 };
        ulong limit = e.Kind == MemmapKind.Usable ? Math.Min(UsableMemmapLimit, physLimit) : physLimit;
        ulong start = Math.Min(e.Start, limit);
        ulong size = Math.Min(e.Size, limit - start);
        return new MemmapEntry(e.Kind, size, start);
    }

    private static ulong ClampVmalloc(ulong v, Profile profile) =>
        profile.PhysAddressBits == 32 ? Math.Min(v, Sizes.GiB - 1) : v;

    private static bool Fits(Layout layout, ulong limit)
    {
        foreach (var r in layout.Ram)
        {
            if (r.End > limit)
                return false;
        }
        foreach (var r in layout.Holes)
        {
            if (r.End > limit)
                return false;
        }
        return true;
    }

    private static string CacheName(int c) => "cache" + c.ToString(CultureInfo.InvariantCulture);

    /// <summary>Reads bytes; past the end every byte is 0.</summary>
    private ref struct Decoder(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> data = data;
        public int Pos;

        public byte Byte()
        {
            if (Pos >= data.Length)
            {
                Pos++;
                return 0;
            }
            return data[Pos++];
        }

        public ulong Varint()
        {
            ulong v = 0;
            int shift = 0;
            for (int i = 0; i < 10; i++)
            {
                byte b = Byte();
                if (shift < 64)
                    v |= (ulong)(b & 0x7F) << shift;
                shift += 7;
                if ((b & 0x80) == 0)
                    break;
            }
            return v;
        }

        /// <summary>R of the relative SIZE form (set once the header is decoded).</summary>
        public ulong Ram;

        /// <summary>L of the limit-relative SIZE form (set once the header is decoded).</summary>
        public ulong[] Limits = [];

        public ulong Size()
        {
            byte s = Byte();
            if (s < 0x80)
                return SizeTable[s % SizeTable.Length];
            if (s >= RelativeSizes)
                return ClampSize(Ram - (Ram >> (s - RelativeSizes + 1)));
            if (s >= LimitSizes)
            {
                int i = s - LimitSizes;   // 0xD0.. the machine's boundaries (Limits[0..3]), 0xE0.. the era limits (Limits[4..7])
                ulong limit = Limits[i / 4];
                return ClampSize((i % 4) switch { 0 => limit - 1, 1 => limit, 2 => limit + 1, _ => limit + PageSize });
            }
            return ClampSize(Varint());
        }

        /// <summary>The page size of the decoded profile.</summary>
        public ulong PageSize;

        public ulong? Align()
        {
            byte a = Byte();
            if (a == 0)
                return null;
            if (a < 0x80)
                return 1UL << ((a - 1) % 32);
            return Math.Min(Varint(), MaxAlign);
        }

        public ulong Address()
        {
            int k = Byte() & 0x7F;
            return k == 0x7F ? Math.Min(Varint(), MaxRegionStart) : AddrTable[k % AddrTable.Length];
        }

        public Ref ObjectRef(int bindings)
        {
            byte r = Byte();
            if ((r & 0x80) == 0 && bindings > 0)
            {
                ulong back = r == 0x7F ? Varint() : r;
                return Ref.To(Names[bindings - 1 - (int)(back % (ulong)bindings)]);
            }
            int k = r & 0x7F;
            return Ref.At(k == 0x7F ? Varint() : AddrTable[k % AddrTable.Length]);
        }

        /// <summary>A kmem_cache_create result, or null when none exists yet.</summary>
        public Ref? CacheRef(List<int> caches)
        {
            int c = Byte() & 0x7F;
            ulong back = c == 0x7F ? Varint() : (ulong)c;
            if (caches.Count == 0)
                return null;
            return Ref.To(Names[caches[caches.Count - 1 - (int)(back % (ulong)caches.Count)]]);
        }
    }

    // ------------------------------------------------------------------------------------ encode

    /// <summary>
    /// Bytes that decode to a scenario printing as <paramref name="s"/> does, when s lies in the
    /// representable subset described at the top of this file; otherwise the nearest one.
    /// </summary>
    public static byte[] Encode(Scenario s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var w = new List<byte>();

        int pi = Array.FindIndex(CodecProfiles, p => p.Name == s.ProfileName);
        if (pi < 0)
            pi = 0;
        var profile = CodecProfiles[pi];
        w.Add((byte)pi);
        w.Add((byte)LayoutIndex(s.Header, profile));

        int bootCount = Math.Min(s.Header.Boot.Count, MaxBootParams);
        w.Add((byte)bootCount);
        for (int i = 0; i < bootCount; i++)
            EncodeBootParam(w, s.Header.Boot[i], profile);

        new OpEncoder(w).EncodeAll(s.Ops);
        return w.ToArray();
    }

    private static int LayoutIndex(Header h, Profile profile)
    {
        ulong limit = profile.PhysAddressLimit;
        for (int i = 0; i < Layouts.Length; i++)
        {
            if (Fits(Layouts[i], limit) && Layouts[i].Ram.SequenceEqual(h.Ram) && Layouts[i].Holes.SequenceEqual(h.Holes))
                return i;
        }
        // Nearest: the layout (that fits) with the closest total RAM.
        ulong want = TotalRam(h.Ram, profile);
        int best = 0;
        ulong bestDistance = ulong.MaxValue;
        for (int i = 0; i < Layouts.Length; i++)
        {
            if (!Fits(Layouts[i], limit))
                continue;
            ulong have = TotalRam(Layouts[i].Ram, profile);
            ulong distance = have > want ? have - want : want - have;
            if (distance < bestDistance)
            {
                best = i;
                bestDistance = distance;
            }
        }
        return best;
    }

    private static ulong TotalRam(IReadOnlyList<Range> ram, Profile profile)
    {
        if (ram.Count == 0)
            return profile.DefaultRam;
        ulong total = 0;
        foreach (var r in ram)
            total = total + r.Size < total ? ulong.MaxValue : total + r.Size;
        return total;
    }

    private static void EncodeBootParam(List<byte> w, BootParam p, Profile profile)
    {
        ulong limit = profile.PhysAddressLimit;
        switch (p.Kind)
        {
            case BootParamKind.Mem:
                TableOrRaw(w, 0, MemTable, Math.Min(p.Value, limit));
                break;
            case BootParamKind.Vmalloc:
                TableOrRaw(w, 2, VmallocTable, ClampVmalloc(p.Value, profile));
                break;
            case BootParamKind.MaxOrder:
            {
                w.Add(3);
                var (lo, hi) = profile.MaxOrderParamRange;
                ulong v = Math.Clamp(p.Value, (ulong)lo, (ulong)hi);
                w.Add((byte)(v - (ulong)lo));
                break;
            }
            case BootParamKind.Memmap:
            {
                w.Add(1);
                IReadOnlyList<MemmapEntry> entries = p.Entries.Count == 0 ? [new MemmapEntry(MemmapKind.Reserved, 0, 0)] : p.Entries;
                int n = Math.Min(entries.Count, MaxMemmapEntries);
                w.Add((byte)(n - 1));
                for (int i = 0; i < n; i++)
                    EncodeMemmapEntry(w, ClampMemmap(entries[i], limit), limit);
                break;
            }
        }
    }

    private static void TableOrRaw(List<byte> w, byte kind, ulong[] table, ulong value)
    {
        int i = Array.IndexOf(table, value);
        if (i >= 0)
        {
            w.Add(kind);
            w.Add((byte)i);
        }
        else
        {
            w.Add((byte)(kind | 0x80));
            WriteVarint(w, value);
        }
    }

    private static void EncodeMemmapEntry(List<byte> w, MemmapEntry e, ulong limit)
    {
        byte kind = (byte)e.Kind;
        if (e.Kind == MemmapKind.MemLimit)
        {
            TableOrRaw(w, kind, MemTable, e.Size);
            return;
        }
        for (int i = 0; i < MemmapTable.Length; i++)
        {
            var (size, start) = MemmapTable[i];
            if (ClampMemmap(new MemmapEntry(e.Kind, size, start), limit) == e)
            {
                w.Add(kind);
                w.Add((byte)i);
                return;
            }
        }
        w.Add((byte)(kind | 0x80));
        WriteVarint(w, e.Size);
        WriteVarint(w, e.Start);
    }

    /// <summary>Encodes operations while tracking the bindings exactly as the decoder will see them.</summary>
    private sealed class OpEncoder(List<byte> w)
    {
        private int bindings;
        private readonly List<int> caches = [];                     // binding index of each cache
        private readonly Dictionary<string, int> nameToBinding = new(StringComparer.Ordinal);

        public void EncodeAll(IReadOnlyList<Op> ops)
        {
            int written = 0;
            foreach (var op in ops)
            {
                if (written == MaxOps)
                    break;
                if (op.Kind == OpKind.Expect)
                    continue;
                Encode(op);
                written++;
            }
        }

        private void Encode(Op op)
        {
            bool cacheOp = op.Kind is OpKind.KmemCacheAlloc or OpKind.KmemCacheFree or OpKind.KmemCacheDestroy;
            if (cacheOp && caches.Count == 0)
            {
                w.Add((byte)OpKind.Meminfo);
                if (op.Bind is not null)
                    nameToBinding.Remove(op.Bind);
                return;
            }
            w.Add((byte)op.Kind);
            switch (op.Kind)
            {
                case OpKind.MemblockAlloc:
                    Size(op.Number);
                    Align(op.Align);
                    break;
                case OpKind.AllocPages:
                    w.Add((byte)Math.Min(op.Number, OrderModulus - 1));
                    w.Add((byte)op.Gfp);
                    break;
                case OpKind.FreePages:
                    ObjectRef(op.Ref);
                    w.Add(op.Order is int o ? (byte)(Math.Clamp(o, 0, OrderModulus - 1) + 1) : (byte)0);
                    break;
                case OpKind.Kmalloc:
                case OpKind.DmaAllocCoherent:
                    Size(op.Number);
                    w.Add((byte)op.Gfp);
                    break;
                case OpKind.KmemCacheCreate:
                    Size(op.Number);
                    Align(op.Align);
                    w.Add(CacheNameByte(op.Text));
                    break;
                case OpKind.KmemCacheAlloc:
                    CacheRef(op.Ref);
                    w.Add((byte)op.Gfp);
                    break;
                case OpKind.KmemCacheFree:
                    CacheRef(op.Ref);
                    ObjectRef(op.Ref2);
                    break;
                case OpKind.KmemCacheDestroy:
                    CacheRef(op.Ref);
                    break;
                case OpKind.Vmalloc:
                    Size(op.Number);
                    break;
                case OpKind.RequestMemRegion:
                case OpKind.Ioremap:
                    Address(op.Number);
                    Size(op.Number2);
                    break;
                case OpKind.Context:
                    w.Add(op.Atomic ? (byte)1 : (byte)0);
                    break;
                case OpKind.MemblockFree:
                case OpKind.Kfree:
                case OpKind.Vfree:
                case OpKind.ReleaseMemRegion:
                case OpKind.Iounmap:
                case OpKind.DmaFreeCoherent:
                    ObjectRef(op.Ref);
                    break;
            }
            if (Syntax.Produces(op.Kind))
            {
                if (op.Kind == OpKind.KmemCacheCreate)
                    caches.Add(bindings);
                if (op.Bind is not null)
                    nameToBinding[op.Bind] = bindings;
                bindings++;
            }
        }

        private void Size(ulong v)
        {
            v = ClampSize(v);
            int i = Array.IndexOf(SizeTable, v);
            if (i >= 0)
            {
                w.Add((byte)i);
                return;
            }
            w.Add(0x80);
            WriteVarint(w, v);
        }

        private void Align(ulong? align)
        {
            if (align is not ulong a)
            {
                w.Add(0);
                return;
            }
            a = Math.Min(a, MaxAlign);
            if (a != 0 && (a & (a - 1)) == 0 && a < MaxAlign)
            {
                w.Add((byte)(System.Numerics.BitOperations.Log2(a) + 1));
                return;
            }
            w.Add(0x80);
            WriteVarint(w, a);
        }

        private void Address(ulong v)
        {
            v = Math.Min(v, MaxRegionStart);
            int i = Array.IndexOf(AddrTable, v);
            if (i >= 0 && i < 0x7F)
            {
                w.Add((byte)i);
                return;
            }
            w.Add(0x7F);
            WriteVarint(w, v);
        }

        private void ObjectRef(Ref? r)
        {
            if (r is { IsName: true } named && nameToBinding.TryGetValue(named.Name!, out int b))
            {
                BackIndex(bindings - 1 - b);
                return;
            }
            ulong address = r is { IsName: false } raw ? raw.Address : 0;
            int i = Array.IndexOf(AddrTable, address);
            if (i >= 0 && i < 0x7F)
            {
                w.Add((byte)(0x80 | i));
                return;
            }
            w.Add(0xFF);
            WriteVarint(w, address);
        }

        private void CacheRef(Ref? r)
        {
            int back = 0;
            if (r is { IsName: true } named && nameToBinding.TryGetValue(named.Name!, out int b))
            {
                int c = caches.IndexOf(b);
                if (c >= 0)
                    back = caches.Count - 1 - c;
            }
            BackIndex(back);
        }

        private void BackIndex(int back)
        {
            if (back < 0x7F)
            {
                w.Add((byte)back);
                return;
            }
            w.Add(0x7F);
            WriteVarint(w, (ulong)back);
        }
    }

    private static byte CacheNameByte(string? text)
    {
        if (text is null)
            return 0;
        if (text.StartsWith("cache", StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            && n is >= 1 and <= 255
            && CacheName(n) == text)
        {
            return (byte)n;
        }
        // Another name: hash it (FNV-1a) so that different names tend to stay different.
        uint h = 2166136261;
        foreach (char c in text)
            h = (h ^ c) * 16777619;
        return (byte)(1 + h % 255);
    }

    private static void WriteVarint(List<byte> w, ulong v)
    {
        while (v >= 0x80)
        {
            w.Add((byte)(v | 0x80));
            v >>= 7;
        }
        w.Add((byte)v);
    }

    // ------------------------------------------------------------------------------------ tables

    /// <summary>
    /// Byte strings worth giving AFL++ as a dictionary: each operation with typical arguments, and
    /// typical boot parameters. Each entry is already in AFL++ dictionary syntax (a quoted string
    /// of `\xNN` escapes), so a `.dict` file is these entries one a line.
    /// </summary>
    public static IReadOnlyList<string> DictionaryTokens()
    {
        static byte Index(ulong[] table, ulong v)
        {
            int i = Array.IndexOf(table, v);
            return i >= 0 ? (byte)i : throw new InvalidOperationException($"{v:x} is not in the table");
        }
        byte Sz(ulong v) => Index(SizeTable, v);
        byte Ad(ulong v) => Index(AddrTable, v);
        const byte Dma = (byte)Gfp.Dma, Atomic = (byte)Gfp.Atomic, HighUser = (byte)Gfp.HighUser, Dma32 = (byte)Gfp.Dma32;
        static byte Code(OpKind k) => (byte)k;

        var tokens = new List<byte[]>
        {
            new[] { Code(OpKind.MemInit) },
            new[] { Code(OpKind.Meminfo) },
            new[] { Code(OpKind.Context), (byte)1 },
            new[] { Code(OpKind.Context), (byte)0 },
            new[] { Code(OpKind.MemblockAlloc), Sz(4 * K), (byte)0 },
            new[] { Code(OpKind.MemblockAlloc), Sz(1 * M), (byte)22 },
            new[] { Code(OpKind.MemblockFree), (byte)0 },
            new[] { Code(OpKind.FreePages), (byte)0, (byte)0 },
            new[] { Code(OpKind.FreePages), (byte)0, (byte)2 },
            new[] { Code(OpKind.FreePages), (byte)0x80, (byte)0 },
            new[] { Code(OpKind.FreePages), (byte)0x81, (byte)1 },
            new[] { Code(OpKind.Kfree), (byte)0 },
            new[] { Code(OpKind.Kfree), (byte)1 },
            new[] { Code(OpKind.KmemCacheCreate), Sz(64), (byte)0, (byte)1 },
            new[] { Code(OpKind.KmemCacheCreate), Sz(128 * K + 1), (byte)0, (byte)0 },
            new[] { Code(OpKind.KmemCacheAlloc), (byte)0, (byte)0 },
            new[] { Code(OpKind.KmemCacheFree), (byte)0, (byte)0 },
            new[] { Code(OpKind.KmemCacheDestroy), (byte)0 },
            new[] { Code(OpKind.Vmalloc), Sz(1 * M) },
            new[] { Code(OpKind.Vmalloc), Sz(64 * M) },
            new[] { Code(OpKind.Vfree), (byte)0 },
            new[] { Code(OpKind.RequestMemRegion), Ad(0xA0000), Sz(64 * K) },
            new[] { Code(OpKind.ReleaseMemRegion), (byte)0 },
            new[] { Code(OpKind.Ioremap), Ad(0xFEC00000), Sz(4 * K) },
            new[] { Code(OpKind.Ioremap), Ad(0x100000), Sz(4 * K) },
            new[] { Code(OpKind.Iounmap), (byte)0 },
            new[] { Code(OpKind.DmaAllocCoherent), Sz(4 * K), Dma },
            new[] { Code(OpKind.DmaFreeCoherent), (byte)0 },
            // boot parameters: mem=64M, memmap=4M$32M, vmalloc=256M, max_order= 10/11
            new byte[] { 0, 2 },
            new byte[] { 1, 0, 1, 0 },
            new byte[] { 2, 6 },
            new byte[] { 3, 10 },
            new byte[] { 3, 15 },
        };
        foreach (byte order in new byte[] { 0, 1, 3, 9, 10, 11, 16 })
            tokens.Add([Code(OpKind.AllocPages), order, 0]);
        foreach (byte gfp in new[] { Dma, Atomic, HighUser, Dma32, (byte)(Dma | Dma32), (byte)(Atomic | Dma) })
            tokens.Add([Code(OpKind.AllocPages), 0, gfp]);
        foreach (ulong size in new ulong[] { 8, 64, 96, 4 * K, 8 * K + 1, 128 * K - 16, 128 * K + 1, 4 * M, 4 * M + 1 })
            tokens.Add([Code(OpKind.Kmalloc), Sz(size), 0]);
        // vmalloc of nearly all of memory at several depths (the relative SIZE form): R - R/2^k, where
        // zone fallback, the watermarks and the totalram limit decide, whatever the machine's RAM.
        foreach (byte rel in new byte[] { 0xF1, 0xF3, 0xF5, 0xF7, 0xFF })
            tokens.Add([Code(OpKind.Vmalloc), rel]);
        // kmalloc at the era's KMALLOC_MAX_SIZE, one byte and one page above it (the limit form).
        foreach (byte lim in new byte[] { 0xE1, 0xE2, 0xE3 })
            tokens.Add([Code(OpKind.Kmalloc), lim, 0]);
        // vmalloc that exactly fills the vmalloc area (with its guard page), and one page more (32-bit
        // profiles; on 64-bit the 32 TiB area makes both 1G after the clamp).
        foreach (byte lim in new byte[] { 0xD1, 0xD3 })
            tokens.Add([Code(OpKind.Vmalloc), lim]);
        // Raw sizes: 2.0's kmalloc limit + 1 (131049), which the table does not hold, and sizes a page
        // or so below 2^64, where rounding up to a bucket or a page order overflows (2^64 - 4096 and
        // 2^63 are also table entries 47 and 48 now; as varints they stay here for the varint form).
        foreach (ulong size in new ulong[] { 131049, 0xFFFFFFFFFFFFF496, 0xFFFFFFFFFFFFF000, HugeSizes })
        {
            var t = new List<byte> { Code(OpKind.Kmalloc), 0x80 };
            WriteVarint(t, size);
            t.Add(0);
            tokens.Add(t.ToArray());
        }

        var result = new List<string>(tokens.Count);
        foreach (var t in tokens)
        {
            var sb = new StringBuilder("\"");
            foreach (byte b in t)
                sb.Append("\\x").Append(b.ToString("X2", CultureInfo.InvariantCulture));
            sb.Append('"');
            result.Add(sb.ToString());
        }
        return result;
    }

    private static Profile[] BuildProfiles()
    {
        var list = new List<Profile> { Profiles.Default };
        foreach (var p in Profiles.All)
        {
            if (p.Name != Profiles.DefaultName)
                list.Add(p);
        }
        return list.ToArray();
    }

    private static string[] BuildNames()
    {
        var names = new string[MaxOps];
        for (int i = 0; i < names.Length; i++)
            names[i] = "p" + i.ToString(CultureInfo.InvariantCulture);
        return names;
    }
}
