using System.Globalization;

namespace Kmem.Scenarios;

/// <summary>
/// The spelling of the `.kmem` language (scenario-format.md), shared by the parser, the printer
/// and the binary codec so that they cannot disagree.
/// </summary>
internal static class Syntax
{
    /// <summary>Canonical operation keywords, indexed by <see cref="OpKind"/>.</summary>
    public static readonly string[] OpNames =
    [
        "memblock_alloc", "memblock_free", "mem_init", "alloc_pages", "free_pages", "kmalloc", "kfree",
        "kmem_cache_create", "kmem_cache_alloc", "kmem_cache_free", "kmem_cache_destroy", "vmalloc",
        "vfree", "request_mem_region", "release_mem_region", "ioremap", "iounmap",
        "dma_alloc_coherent", "dma_free_coherent", "context", "meminfo", "expect",
    ];

    public static readonly Dictionary<string, OpKind> OpByName = BuildOpByName();

    public static readonly string[] HeaderKeywords = ["kmem", "profile", "ram", "hole", "boot"];

    /// <summary>GFP flags in their printing order.</summary>
    public static readonly (Gfp Flag, string Name)[] GfpNames =
    [
        (Gfp.Kernel, "GFP_KERNEL"), (Gfp.Atomic, "GFP_ATOMIC"), (Gfp.NoWait, "GFP_NOWAIT"),
        (Gfp.Dma, "GFP_DMA"), (Gfp.Dma32, "GFP_DMA32"), (Gfp.HighUser, "GFP_HIGHUSER"),
        (Gfp.Zero, "__GFP_ZERO"), (Gfp.NoWarn, "__GFP_NOWARN"),
    ];

    public static readonly string[] Fields =
    [
        "MemTotal", "MemFree", "VmallocTotal", "VmallocUsed", "VmallocChunk",
        "Free.DMA", "Free.DMA32", "Free.Normal", "Free.HighMem",
    ];

    /// <summary>Comparison operators, indexed by <see cref="Cmp"/>.</summary>
    public static readonly string[] CmpNames = ["==", "!=", "<", "<=", ">", ">="];

    /// <summary>Outcome spellings, indexed by <see cref="Outcome"/>.</summary>
    public static readonly string[] OutcomeNames = ["ok", "ENOMEM", "EINVAL", "EBUSY", "BUG"];

    /// <summary>Separator of each memmap= form, indexed by <see cref="MemmapKind"/> (MemLimit has none).</summary>
    public static readonly char[] MemmapSeparators = ['@', '$', '#', '!'];

    /// <summary>Whether `NAME = op` is allowed: the operation produces something to refer to later.</summary>
    public static bool Produces(OpKind kind) => kind switch
    {
        OpKind.MemblockAlloc or OpKind.AllocPages or OpKind.Kmalloc or OpKind.KmemCacheCreate
            or OpKind.KmemCacheAlloc or OpKind.Vmalloc or OpKind.RequestMemRegion or OpKind.Ioremap
            or OpKind.DmaAllocCoherent => true,
        _ => false,
    };

    /// <summary>`[a-z_][a-z0-9_]*`.</summary>
    public static bool IsName(string s)
    {
        if (s.Length == 0 || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
            return false;
        foreach (char c in s)
        {
            if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
                return false;
        }
        return true;
    }

    /// <summary>A `name=TEXT` value: one or more visible ASCII characters other than `#`.</summary>
    public static bool IsCacheText(string s)
    {
        if (s.Length == 0)
            return false;
        foreach (char c in s)
        {
            if (c <= ' ' || c > '~' || c == '#')
                return false;
        }
        return true;
    }

    private static Dictionary<string, OpKind> BuildOpByName()
    {
        var map = new Dictionary<string, OpKind>(StringComparer.Ordinal);
        for (int i = 0; i < OpNames.Length; i++)
            map[OpNames[i]] = (OpKind)i;
        map["__get_free_pages"] = OpKind.AllocPages;
        map["ioremap_nocache"] = OpKind.Ioremap;
        return map;
    }
}

/// <summary>
/// Reads `.kmem` text (scenario-format.md, version 1) into a <see cref="Scenario"/>, or throws a
/// <see cref="ScenarioException"/> naming the line, the column of the offending token and what was
/// expected. Besides syntax it refuses machines the tool cannot or must not model (see
/// docs/semantics.md): RAM or holes outside the profile's physical address space, overlapping
/// banks, more RAM than <see cref="Sizes.MaxRamBytes"/>, out-of-range `max_order=`, `mem=` and
/// `memmap=` beyond the address space, and a `vmalloc=` that leaves a 32-bit profile no lowmem.
/// </summary>
/// <remarks>
/// `#` starts a comment at the start of a line or after white space; inside a token it is an
/// ordinary character, which is what lets `memmap=4M#32M` (the ACPI form) be written.
/// </remarks>
public static class ScenarioParser
{
    /// <summary>The format version this tool reads.</summary>
    public const int FormatVersion = 1;

    /// <summary>The largest order the text may name (alloc_pages ORDER, free_pages order=N).</summary>
    public const int MaxOrderNumber = 63;

    public static Scenario Parse(string text, string? file = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new Reader(text, file).Run();
    }

    private readonly record struct Token(string Text, int Column)
    {
        /// <summary>1-based column just past the token.</summary>
        public int End => Column + Text.Length;
    }

    private readonly record struct Placed(Range Range, int Line, int StartColumn, int SizeColumn);

    private sealed class Reader
    {
        private readonly string[] lines;
        private readonly string? file;

        private int version = FormatVersion;
        private int versionLine;
        private string? profileName;
        private int profileLine;
        private readonly List<Placed> ram = [];
        private readonly List<Placed> holes = [];
        private readonly List<BootParam> boot = [];
        private readonly List<string> bootTexts = [];
        private int bootLine;
        private readonly List<string> comments = [];

        private readonly List<Op> ops = [];
        private readonly HashSet<string> bound = new(StringComparer.Ordinal);
        private int firstOpLine;

        public Reader(string text, string? file)
        {
            if (text.Length > 0 && text[0] == '\uFEFF')
                text = text[1..];
            lines = text.Split('\n');
            this.file = file;
        }

        public Scenario Run()
        {
            CheckVersionFirst();
            bool sawStatement = false;
            bool inHeader = true;
            for (int i = 0; i < lines.Length; i++)
            {
                int lineNo = i + 1;
                string line = lines[i].TrimEnd('\r');
                var tokens = Tokenize(line);
                if (tokens.Count == 0)
                {
                    if (!sawStatement && IsCommentLine(line, out string comment))
                        comments.Add(comment);
                    continue;
                }
                sawStatement = true;

                if (IsHeaderStatement(tokens))
                {
                    if (!inHeader)
                    {
                        throw Error(lineNo, tokens[0].Column,
                            $"'{tokens[0].Text}' is a header statement: it must come before the first operation (line {firstOpLine})");
                    }
                    ParseHeaderStatement(tokens, lineNo);
                    continue;
                }

                if (inHeader)
                {
                    inHeader = false;
                    firstOpLine = lineNo;
                    ValidateHeader();
                }
                ops.Add(ParseOp(tokens, lineNo));
            }
            if (inHeader)
                ValidateHeader();

            var header = new Header
            {
                Version = version,
                Profile = profileName,
                Ram = ram.ConvertAll(p => p.Range),
                Holes = holes.ConvertAll(p => p.Range),
                Boot = boot,
                Comments = comments,
                BootLine = bootLine,
            };
            return new Scenario(header, ops);
        }

        // ---------------------------------------------------------------- lexing

        private static List<Token> Tokenize(string line)
        {
            var tokens = new List<Token>();
            int i = 0;
            while (i < line.Length)
            {
                if (char.IsWhiteSpace(line[i]))
                {
                    i++;
                    continue;
                }
                if (line[i] == '#')
                    break;
                int start = i;
                while (i < line.Length && !char.IsWhiteSpace(line[i]))
                    i++;
                tokens.Add(new Token(line[start..i], start + 1));
            }
            return tokens;
        }

        private static bool IsCommentLine(string line, out string comment)
        {
            comment = "";
            string trimmed = line.TrimStart();
            if (trimmed.Length == 0 || trimmed[0] != '#')
                return false;
            comment = trimmed[1..];
            if (comment.StartsWith(' '))
                comment = comment[1..];
            return true;
        }

        private static bool IsHeaderStatement(List<Token> tokens) =>
            Array.IndexOf(Syntax.HeaderKeywords, tokens[0].Text) >= 0
            && !(tokens.Count > 1 && tokens[1].Text == "=");

        /// <summary>
        /// A file written for a newer format may not parse at all under version 1 rules: report the
        /// version before anything else.
        /// </summary>
        private void CheckVersionFirst()
        {
            for (int i = 0; i < lines.Length; i++)
            {
                var tokens = Tokenize(lines[i].TrimEnd('\r'));
                if (tokens.Count == 2 && tokens[0].Text == "kmem"
                    && TryParseNumber(tokens[1].Text, out ulong v) && v > FormatVersion)
                {
                    throw Error(i + 1, tokens[1].Column, NewerVersion(tokens[1].Text));
                }
            }
        }

        private static string NewerVersion(string written) =>
            $"format version {written} is newer than this tool understands ({FormatVersion}); upgrade kmem-verify";

        // ---------------------------------------------------------------- header

        private void ParseHeaderStatement(List<Token> t, int line)
        {
            switch (t[0].Text)
            {
                case "kmem":
                {
                    if (versionLine != 0)
                        throw Error(line, t[0].Column, $"'kmem' may appear only once (first on line {versionLine})");
                    var v = Arg(t, 1, line, "'kmem' needs the format version, for example 'kmem 1'");
                    ExpectEnd(t, 2, line, "kmem VERSION");
                    if (!TryParseNumber(v.Text, out ulong n))
                        throw Error(line, v.Column, $"bad format version '{v.Text}': expected a number such as 1");
                    if (n > FormatVersion)
                        throw Error(line, v.Column, NewerVersion(v.Text));
                    if (n < 1)
                        throw Error(line, v.Column, $"format version {v.Text} does not exist; this tool reads version {FormatVersion}");
                    version = (int)n;
                    versionLine = line;
                    break;
                }
                case "profile":
                {
                    if (profileLine != 0)
                        throw Error(line, t[0].Column, $"'profile' may appear only once (first on line {profileLine})");
                    var p = Arg(t, 1, line, "'profile' needs a profile name, for example 'profile " + Profiles.DefaultName + "'");
                    ExpectEnd(t, 2, line, "profile NAME");
                    if (Profiles.Get(p.Text) is null)
                    {
                        string known = string.Join(", ", Profiles.All.Select(x => x.Name));
                        throw Error(line, p.Column, $"unknown profile '{p.Text}'; known: {known}");
                    }
                    profileName = p.Text;
                    profileLine = line;
                    break;
                }
                case "ram":
                {
                    if (t.Count == 2)
                    {
                        ulong size = ParseSize(t[1], line, "RAM size");
                        ram.Add(Place(new Range(0, size), line, t[1].Column, t[1].Column, "ram bank"));
                    }
                    else if (t.Count == 3)
                    {
                        ulong start = ParseSize(t[1], line, "RAM start address");
                        ulong size = ParseSize(t[2], line, "RAM size");
                        ram.Add(Place(new Range(start, size), line, t[1].Column, t[2].Column, "ram bank"));
                    }
                    else if (t.Count < 2)
                    {
                        throw Error(line, t[0].End, "'ram' needs a size ('ram SIZE') or a start and a size ('ram START SIZE')");
                    }
                    else
                    {
                        throw Error(line, t[3].Column, $"unexpected '{t[3].Text}': expected 'ram SIZE' or 'ram START SIZE'");
                    }
                    break;
                }
                case "hole":
                {
                    var s = Arg(t, 1, line, "'hole' needs a start and a size ('hole START SIZE')");
                    var z = Arg(t, 2, line, "'hole' needs a size after the start ('hole START SIZE')");
                    ExpectEnd(t, 3, line, "hole START SIZE");
                    ulong start = ParseSize(s, line, "hole start address");
                    ulong size = ParseSize(z, line, "hole size");
                    holes.Add(Place(new Range(start, size), line, s.Column, z.Column, "hole"));
                    break;
                }
                case "boot":
                {
                    if (bootLine != 0)
                        throw Error(line, t[0].Column, $"'boot' may appear only once (first on line {bootLine}); put every parameter on one line");
                    bootLine = line;
                    for (int i = 1; i < t.Count; i++)
                    {
                        boot.Add(ParseBootParam(t[i], line));
                        bootTexts.Add(t[i].Text);
                    }
                    break;
                }
            }
        }

        private Placed Place(Range r, int line, int startColumn, int sizeColumn, string what)
        {
            if (r.Size == 0)
                throw Error(line, sizeColumn, $"{what} of size 0: a {what} must have a size");
            if (r.Start > ulong.MaxValue - r.Size)
                throw Error(line, sizeColumn, $"{what} at {Sizes.FormatAddress(r.Start)} of size {Sizes.Format(r.Size)} runs past the end of the 64-bit address space");
            return new Placed(r, line, startColumn, sizeColumn);
        }

        private BootParam ParseBootParam(Token tok, int line)
        {
            int eq = tok.Text.IndexOf('=');
            string key = eq < 0 ? "" : tok.Text[..eq];
            string value = eq < 0 ? "" : tok.Text[(eq + 1)..];
            switch (key)
            {
                case "mem":
                    return new BootParam { Kind = BootParamKind.Mem, Value = BootSize(value, tok, line, "mem="), Column = tok.Column };
                case "vmalloc":
                    return new BootParam { Kind = BootParamKind.Vmalloc, Value = BootSize(value, tok, line, "vmalloc="), Column = tok.Column };
                case "max_order":
                    if (!TryParseNumber(value, out ulong n))
                        throw Error(line, tok.Column, $"bad value in '{tok.Text}': max_order= takes a number");
                    return new BootParam { Kind = BootParamKind.MaxOrder, Value = n, Column = tok.Column };
                case "memmap":
                {
                    if (value.Length == 0)
                        throw Error(line, tok.Column, "empty memmap=: expected nn, nn@ss, nn$ss, nn#ss or nn!ss");
                    var entries = new List<MemmapEntry>();
                    foreach (string part in value.Split(','))
                        entries.Add(ParseMemmapEntry(part, tok, line));
                    return new BootParam { Kind = BootParamKind.Memmap, Entries = entries, Column = tok.Column };
                }
                default:
                    throw Error(line, tok.Column,
                        $"unknown boot parameter '{tok.Text}': expected mem=, memmap=, vmalloc= or max_order=");
            }
        }

        private ulong BootSize(string value, Token tok, int line, string param)
        {
            if (!Sizes.TryParse(value, out ulong v))
                throw Error(line, tok.Column, $"bad size in '{tok.Text}': {param} takes {SizeSyntax}");
            return v;
        }

        private MemmapEntry ParseMemmapEntry(string part, Token tok, int line)
        {
            const string forms = "expected nn, nn@ss, nn$ss, nn#ss or nn!ss";
            int sep = part.IndexOfAny(Syntax.MemmapSeparators);
            if (sep < 0)
            {
                if (!Sizes.TryParse(part, out ulong limit))
                    throw Error(line, tok.Column, $"bad memmap= entry '{part}' in '{tok.Text}': {forms}");
                return new MemmapEntry(MemmapKind.MemLimit, limit, 0);
            }
            var kind = (MemmapKind)Array.IndexOf(Syntax.MemmapSeparators, part[sep]);
            if (!Sizes.TryParse(part[..sep], out ulong size) || !Sizes.TryParse(part[(sep + 1)..], out ulong start))
                throw Error(line, tok.Column, $"bad memmap= entry '{part}' in '{tok.Text}': {forms}, where nn and ss are each {SizeSyntax}");
            if (start > ulong.MaxValue - size)
                throw Error(line, tok.Column, $"memmap= entry '{part}' runs past the end of the 64-bit address space");
            return new MemmapEntry(kind, size, start);
        }

        /// <summary>The checks that need the profile, made once the header is complete.</summary>
        private void ValidateHeader()
        {
            var profile = Profiles.Get(profileName ?? Profiles.DefaultName)
                ?? throw new InvalidOperationException("the default profile is missing");
            ulong limit = profile.PhysAddressLimit;
            string space = $"the physical address space of {profile.Name}, which ends at {Sizes.FormatAddress(limit)} ({profile.PhysAddressBits}-bit addresses)";

            foreach (var p in ram)
                CheckInside(p, limit, "ram bank", space);
            foreach (var p in holes)
                CheckInside(p, limit, "hole", space);

            var sorted = ram.OrderBy(p => p.Range.Start).ThenBy(p => p.Line).ToList();
            for (int i = 1; i < sorted.Count; i++)
            {
                var a = sorted[i - 1];
                var b = sorted[i];
                if (b.Range.Start < a.Range.End)
                {
                    var (later, earlier) = b.Line >= a.Line ? (b, a) : (a, b);
                    throw Error(later.Line, later.StartColumn,
                        $"ram bank {Describe(later.Range)} overlaps the bank {Describe(earlier.Range)} on line {earlier.Line}; banks may not overlap");
                }
            }

            for (int i = 0; i < boot.Count; i++)
                CheckBootParam(boot[i], bootTexts[i], profile, limit, space);

            CheckTotalRam(profile);
        }

        private void CheckInside(Placed p, ulong limit, string what, string space)
        {
            if (p.Range.Start >= limit)
                throw Error(p.Line, p.StartColumn, $"{what} {Describe(p.Range)} starts beyond {space}");
            if (p.Range.Size > limit - p.Range.Start)
                throw Error(p.Line, p.SizeColumn, $"{what} {Describe(p.Range)} extends beyond {space}");
        }

        private void CheckBootParam(BootParam p, string text, Profile profile, ulong limit, string space)
        {
            switch (p.Kind)
            {
                case BootParamKind.Mem:
                    if (p.Value > limit)
                        throw Error(bootLine, p.Column, $"'{text}' is beyond {space}");
                    break;
                case BootParamKind.Vmalloc:
                    if (profile.PhysAddressBits == 32 && p.Value >= Sizes.GiB)
                    {
                        throw Error(bootLine, p.Column,
                            $"'{text}' would leave no directly mapped memory on {profile.Name} (a 32-bit kernel maps 1G): it must be below 1G");
                    }
                    break;
                case BootParamKind.MaxOrder:
                {
                    var (lo, hi) = profile.MaxOrderParamRange;
                    string how = profile.MaxOrderInclusive ? "inclusive (largest order N)" : "exclusive (largest order N-1)";
                    if (p.Value < (ulong)lo || p.Value > (ulong)hi)
                    {
                        throw Error(bootLine, p.Column,
                            $"'{text}' is out of range: {profile.Name} counts MAX_ORDER as {how}, so max_order= must be {lo}..{hi} (the largest block may not exceed a {Sizes.Format(1UL << profile.SectionSizeBits)} memory section, SECTION_SIZE_BITS {profile.SectionSizeBits})");
                    }
                    break;
                }
                case BootParamKind.Memmap:
                    foreach (var e in p.Entries)
                    {
                        if (e.Kind == MemmapKind.MemLimit)
                        {
                            if (e.Size > limit)
                                throw Error(bootLine, p.Column, $"memmap= entry {MemmapText(e)} in '{text}' (the same as mem=) is beyond {space}");
                        }
                        else if (e.Start > limit || e.Size > limit - e.Start)
                        {
                            throw Error(bootLine, p.Column,
                                $"memmap= entry {MemmapText(e)} in '{text}' extends beyond {space}");
                        }
                    }
                    break;
            }
        }

        /// <summary>
        /// RAM banks (or the profile's default RAM) plus every `memmap=nn@ss` range, counted once
        /// where they overlap, may not exceed <see cref="Sizes.MaxRamBytes"/>.
        /// </summary>
        private void CheckTotalRam(Profile profile)
        {
            // Items in file order: (range, line, column).
            var items = new List<(Range Range, int Line, int Column)>();
            if (ram.Count == 0)
                items.Add((new Range(0, profile.DefaultRam), 0, 0));
            foreach (var p in ram)
                items.Add((p.Range, p.Line, p.SizeColumn));
            foreach (var p in boot)
            {
                foreach (var e in p.Entries)
                {
                    if (e.Kind == MemmapKind.Usable && e.Size > 0)
                        items.Add((new Range(e.Start, e.Size), bootLine, p.Column));
                }
            }
            items.Sort((a, b) => a.Line != b.Line ? a.Line.CompareTo(b.Line) : a.Column.CompareTo(b.Column));

            if (UnionSize(items.ConvertAll(x => x.Range)) <= Sizes.MaxRamBytes)
                return;
            // Over the limit: find the first item that takes it over, to point at it.
            for (int n = 1; n <= items.Count; n++)
            {
                ulong total = UnionSize(items.GetRange(0, n).ConvertAll(x => x.Range));
                if (total > Sizes.MaxRamBytes)
                {
                    var (_, line, column) = items[n - 1];
                    throw Error(line, column,
                        $"total RAM of {Sizes.Format(total)} is more than {Sizes.Format(Sizes.MaxRamBytes)}, the most this tool can represent (ram banks and memmap=nn@ss ranges count)");
                }
            }
        }

        private static ulong UnionSize(List<Range> ranges)
        {
            ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
            ulong total = 0;
            ulong curStart = 0, curEnd = 0;
            bool open = false;
            foreach (var r in ranges)
            {
                if (r.Size == 0)
                    continue;
                if (open && r.Start <= curEnd)
                {
                    if (r.End > curEnd)
                        curEnd = r.End;
                    continue;
                }
                if (open)
                    total += curEnd - curStart;
                curStart = r.Start;
                curEnd = r.End;
                open = true;
            }
            if (open)
                total += curEnd - curStart;
            return total;
        }

        private static string Describe(Range r) =>
            $"[{Sizes.FormatAddress(r.Start)}, {Sizes.FormatAddress(r.End)})";

        private static string MemmapText(MemmapEntry e) => e.Kind == MemmapKind.MemLimit
            ? Sizes.Format(e.Size)
            : Sizes.Format(e.Size) + Syntax.MemmapSeparators[(int)e.Kind] + Sizes.FormatAddress(e.Start);

        // ---------------------------------------------------------------- operations

        private Op ParseOp(List<Token> t, int line)
        {
            int i = 0;
            string? bind = null;
            if (t.Count >= 2 && t[1].Text == "=")
            {
                if (!Syntax.IsName(t[0].Text))
                    throw Error(line, t[0].Column, $"'{t[0].Text}' is not a valid name: names are [a-z_][a-z0-9_]*");
                bind = t[0].Text;
                i = 2;
                if (t.Count == 2)
                    throw Error(line, t[1].End, $"expected an operation after '{bind} ='");
            }

            var opTok = t[i];
            if (!Syntax.OpByName.TryGetValue(opTok.Text, out var kind))
            {
                if (Array.IndexOf(Syntax.HeaderKeywords, opTok.Text) >= 0)
                    throw Error(line, opTok.Column, $"'{opTok.Text}' is a header statement and cannot be bound to a name");
                throw Error(line, opTok.Column,
                    $"unknown operation '{opTok.Text}'; expected one of {string.Join(", ", Syntax.OpNames)}");
            }
            if (bind is not null && !Syntax.Produces(kind))
                throw Error(line, t[0].Column, $"'{opTok.Text}' produces no result to bind to '{bind}'");

            // `=> OUTCOME` at the end.
            int end = t.Count;
            Outcome? expected = null;
            for (int j = i + 1; j < t.Count; j++)
            {
                if (t[j].Text != "=>")
                    continue;
                if (kind == OpKind.Expect)
                    throw Error(line, t[j].Column, "'expect' takes no '=> OUTCOME'");
                if (j + 1 >= t.Count)
                    throw Error(line, t[j].End, "expected an outcome after '=>': ok, ENOMEM, EINVAL, EBUSY or BUG");
                int o = Array.IndexOf(Syntax.OutcomeNames, t[j + 1].Text);
                if (o < 0)
                    throw Error(line, t[j + 1].Column, $"unknown outcome '{t[j + 1].Text}'; expected ok, ENOMEM, EINVAL, EBUSY or BUG");
                if (j + 2 < t.Count)
                    throw Error(line, t[j + 2].Column, $"unexpected '{t[j + 2].Text}' after the outcome");
                expected = (Outcome)o;
                end = j;
                break;
            }

            var a = new Args(this, t, i + 1, end, line, opTok.Text);
            var op = new Op { Kind = kind, Bind = bind, Expected = expected, Line = line };
            switch (kind)
            {
                case OpKind.MemblockAlloc:
                    op = op with { Number = a.Size("a size") };
                    op = a.Options(op, allowAlign: true);
                    break;
                case OpKind.MemblockFree:
                case OpKind.Kfree:
                case OpKind.Vfree:
                case OpKind.ReleaseMemRegion:
                case OpKind.Iounmap:
                case OpKind.DmaFreeCoherent:
                    op = op with { Ref = a.ObjectRef() };
                    a.End();
                    break;
                case OpKind.MemInit:
                case OpKind.Meminfo:
                    a.End();
                    break;
                case OpKind.AllocPages:
                    op = op with { Number = (ulong)a.Order() };
                    op = a.Options(op, allowGfp: true);
                    break;
                case OpKind.FreePages:
                    op = op with { Ref = a.ObjectRef() };
                    op = a.Options(op, allowOrder: true);
                    break;
                case OpKind.Kmalloc:
                case OpKind.DmaAllocCoherent:
                    op = op with { Number = a.Size("a size") };
                    op = a.Options(op, allowGfp: true);
                    break;
                case OpKind.KmemCacheCreate:
                    op = op with { Number = a.Size("an object size") };
                    op = a.Options(op, allowAlign: true, allowName: true);
                    break;
                case OpKind.KmemCacheAlloc:
                    op = op with { Ref = a.CacheRef() };
                    op = a.Options(op, allowGfp: true);
                    break;
                case OpKind.KmemCacheFree:
                    op = op with { Ref = a.CacheRef(), Ref2 = a.ObjectRef() };
                    a.End();
                    break;
                case OpKind.KmemCacheDestroy:
                    op = op with { Ref = a.CacheRef() };
                    a.End();
                    break;
                case OpKind.Vmalloc:
                    op = op with { Number = a.Size("a size") };
                    a.End();
                    break;
                case OpKind.RequestMemRegion:
                case OpKind.Ioremap:
                {
                    ulong start = a.Address("a start address and a size");
                    ulong size = a.Size("a size after the start address");
                    op = op with { Number = start, Number2 = size };
                    a.End();
                    break;
                }
                case OpKind.Context:
                {
                    var c = a.Next("'atomic' or 'process'");
                    if (c.Text != "atomic" && c.Text != "process")
                        throw Error(line, c.Column, $"unknown context '{c.Text}': expected 'atomic' or 'process'");
                    op = op with { Atomic = c.Text == "atomic" };
                    a.End();
                    break;
                }
                case OpKind.Expect:
                {
                    var f = a.Next("a field, a comparison and a value, for example 'expect MemFree >= 100M'");
                    if (Array.IndexOf(Syntax.Fields, f.Text) < 0)
                        throw Error(line, f.Column, $"unknown meminfo field '{f.Text}'; expected one of {string.Join(", ", Syntax.Fields)}");
                    var c = a.Next("a comparison (== != < <= > >=) after the field");
                    int cmp = Array.IndexOf(Syntax.CmpNames, c.Text);
                    if (cmp < 0)
                        throw Error(line, c.Column, $"unknown comparison '{c.Text}'; expected one of == != < <= > >=");
                    ulong value = a.Size("a value after the comparison");
                    op = op with { Field = f.Text, Cmp = (Cmp)cmp, Number = value };
                    a.End();
                    break;
                }
            }

            if (bind is not null)
                bound.Add(bind);
            return op;
        }

        /// <summary>A cursor over the arguments of one operation.</summary>
        private sealed class Args
        {
            private readonly Reader r;
            private readonly List<Token> t;
            private readonly int end;
            private readonly int line;
            private readonly string opName;
            private int pos;

            public Args(Reader reader, List<Token> tokens, int start, int end, int line, string opName)
            {
                r = reader;
                t = tokens;
                pos = start;
                this.end = end;
                this.line = line;
                this.opName = opName;
            }

            public Token Next(string what)
            {
                if (pos >= end)
                    throw r.Error(line, t[end - 1].End, $"'{opName}' needs {what}");
                return t[pos++];
            }

            public void End()
            {
                if (pos < end)
                    throw r.Error(line, t[pos].Column, $"unexpected '{t[pos].Text}' after '{opName}' and its arguments");
            }

            public ulong Size(string what) => r.ParseSize(Next(what), line, "size");

            public ulong Address(string what) => r.ParseSize(Next(what), line, "address");

            public int Order()
            {
                var tok = Next("an order");
                return r.ParseOrder(tok.Text, tok, line);
            }

            public Ref ObjectRef()
            {
                if (pos >= end)
                    throw r.Error(line, t[end - 1].End, $"'{opName}' needs a name or @address");
                var tok = t[pos++];
                if (tok.Text.StartsWith('@'))
                {
                    if (!Sizes.TryParse(tok.Text[1..], out ulong addr))
                        throw r.Error(line, tok.Column, $"bad address '{tok.Text}': after '@' comes {SizeSyntax}");
                    return Ref.At(addr);
                }
                if (!Syntax.IsName(tok.Text))
                    throw r.Error(line, tok.Column, $"'{opName}' needs a name or @address, not '{tok.Text}'");
                return r.Use(tok, line);
            }

            public Ref CacheRef()
            {
                if (pos >= end)
                    throw r.Error(line, t[end - 1].End, $"'{opName}' needs the name of a cache");
                var tok = t[pos++];
                if (tok.Text.StartsWith('@'))
                    throw r.Error(line, tok.Column, $"'{opName}' needs the name of a cache: a raw address may stand only for what is freed");
                if (!Syntax.IsName(tok.Text))
                    throw r.Error(line, tok.Column, $"'{opName}' needs the name of a cache, not '{tok.Text}'");
                return r.Use(tok, line);
            }

            /// <summary>Options (`align=`, `order=`, `name=`) and GFP flags, in any order, each at most once.</summary>
            public Op Options(Op op, bool allowAlign = false, bool allowOrder = false, bool allowName = false, bool allowGfp = false)
            {
                bool sawAlign = false, sawOrder = false, sawName = false, sawGfp = false;
                while (pos < end)
                {
                    var tok = t[pos++];
                    int eq = tok.Text.IndexOf('=');
                    string key = eq < 0 ? "" : tok.Text[..eq];
                    string value = eq < 0 ? "" : tok.Text[(eq + 1)..];
                    if (key is "align" or "order" or "name")
                    {
                        bool allowed = key switch { "align" => allowAlign, "order" => allowOrder, _ => allowName };
                        if (!allowed)
                            throw r.Error(line, tok.Column, $"'{opName}' takes no option '{key}='");
                        bool seen = key switch { "align" => sawAlign, "order" => sawOrder, _ => sawName };
                        if (seen)
                            throw r.Error(line, tok.Column, $"'{key}=' is given twice");
                        switch (key)
                        {
                            case "align":
                                if (!Sizes.TryParse(value, out ulong align))
                                    throw r.Error(line, tok.Column, $"bad value in '{tok.Text}': align= takes {SizeSyntax}");
                                op = op with { Align = align };
                                sawAlign = true;
                                break;
                            case "order":
                                op = op with { Order = r.ParseOrder(value, tok, line) };
                                sawOrder = true;
                                break;
                            default:
                                if (!Syntax.IsCacheText(value))
                                    throw r.Error(line, tok.Column, $"bad cache name in '{tok.Text}': expected visible ASCII characters other than '#'");
                                op = op with { Text = value };
                                sawName = true;
                                break;
                        }
                        continue;
                    }
                    if (allowGfp && (tok.Text.StartsWith('|') || tok.Text.EndsWith('|') || (sawGfp && tok.Text.Contains("GFP_", StringComparison.Ordinal))))
                        throw r.Error(line, tok.Column, $"GFP flags are joined with '|' and no spaces, for example GFP_KERNEL|__GFP_ZERO");
                    if (allowGfp && !sawGfp)
                    {
                        op = op with { Gfp = r.ParseGfp(tok, line) };
                        sawGfp = true;
                        continue;
                    }
                    throw r.Error(line, tok.Column, $"unexpected '{tok.Text}' after '{opName}' and its arguments");
                }
                return op;
            }
        }

        private Ref Use(Token tok, int line)
        {
            if (!bound.Contains(tok.Text))
                throw Error(line, tok.Column, $"name '{tok.Text}' is used before it is bound (bind it with '{tok.Text} = ...' on an earlier line)");
            return Ref.To(tok.Text);
        }

        private Gfp ParseGfp(Token tok, int line)
        {
            var gfp = Gfp.None;
            int offset = 0;
            foreach (string part in tok.Text.Split('|'))
            {
                int column = tok.Column + offset;
                offset += part.Length + 1;
                if (part.Length == 0)
                    throw Error(line, tok.Column, $"bad GFP flags '{tok.Text}': flags are joined with '|' and no spaces, for example GFP_KERNEL|__GFP_ZERO");
                int found = -1;
                for (int k = 0; k < Syntax.GfpNames.Length; k++)
                {
                    if (Syntax.GfpNames[k].Name == part)
                        found = k;
                }
                if (found < 0)
                {
                    string known = string.Join(", ", Syntax.GfpNames.Select(g => g.Name));
                    throw Error(line, column, $"unknown GFP flag '{part}'; expected {known}, joined with '|'");
                }
                gfp |= Syntax.GfpNames[found].Flag;
            }
            return gfp;
        }

        private int ParseOrder(string text, Token tok, int line)
        {
            if (!TryParseNumber(text, out ulong n))
                throw Error(line, tok.Column, $"bad order '{text}': expected a number");
            if (n > MaxOrderNumber)
                throw Error(line, tok.Column, $"order {text} is out of range: orders are 0..{MaxOrderNumber}");
            return (int)n;
        }

        private ulong ParseSize(Token tok, int line, string what)
        {
            if (!Sizes.TryParse(tok.Text, out ulong v))
                throw Error(line, tok.Column, $"bad {what} '{tok.Text}': expected {SizeSyntax}");
            return v;
        }

        // ---------------------------------------------------------------- helpers

        private Token Arg(List<Token> t, int index, int line, string message)
        {
            if (index >= t.Count)
                throw Error(line, t[^1].End, message);
            return t[index];
        }

        private void ExpectEnd(List<Token> t, int count, int line, string form)
        {
            if (t.Count > count)
                throw Error(line, t[count].Column, $"unexpected '{t[count].Text}': expected '{form}'");
        }

        private ScenarioException Error(int line, int column, string reason) => new(file, line, column, reason);
    }

    private const string SizeSyntax =
        "a decimal or 0x hex number with an optional K, M, G, T, P or E suffix, below 2^64";

    /// <summary>Decimal or 0x hex, no suffix.</summary>
    private static bool TryParseNumber(string text, out ulong value)
    {
        value = 0;
        if (text.Length == 0)
            return false;
        char last = text[^1];
        bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        if (!hex && !(last >= '0' && last <= '9'))
            return false;
        if (hex)
        {
            return text.Length > 2
                && ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }
        return Sizes.TryParse(text, out value);
    }
}
