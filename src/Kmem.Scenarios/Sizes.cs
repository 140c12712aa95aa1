using System.Globalization;

namespace Kmem.Scenarios;

/// <summary>
/// Numbers as scenarios write them: decimal or `0x` hex, with an optional binary suffix, like the
/// kernel's memparse (lib/cmdline.c): K, M, G, T, P, E, either case. As in memparse, a hex number
/// takes its digits greedily, so `0x1E` is 30, not 1 EiB.
/// </summary>
public static class Sizes
{
    /// <summary>
    /// The most RAM a scenario may describe (banks plus `memmap=nn@ss` ranges). Not a kernel
    /// limit: it is what this tool can represent frame by frame without running out of memory.
    /// </summary>
    public const ulong MaxRamBytes = 256UL << 30;

    public const ulong KiB = 1UL << 10;
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;
    public const ulong TiB = 1UL << 40;

    /// <summary>Parses `123`, `0x7b`, `4K`, `0x10M`, `1g`... False when malformed or above 2^64 - 1.</summary>
    public static bool TryParse(string? text, out ulong value)
    {
        value = 0;
        if (string.IsNullOrEmpty(text))
            return false;

        int i = 0;
        int digits = 0;
        ulong v = 0;
        bool hex = text.Length > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
        if (hex)
        {
            i = 2;
            while (i < text.Length && HexDigit(text[i]) is int d and >= 0)
            {
                if (v > ulong.MaxValue >> 4)
                    return false;
                v = (v << 4) | (uint)d;
                i++;
                digits++;
            }
        }
        else
        {
            while (i < text.Length && text[i] >= '0' && text[i] <= '9')
            {
                uint d = (uint)(text[i] - '0');
                if (v > (ulong.MaxValue - d) / 10)
                    return false;
                v = v * 10 + d;
                i++;
                digits++;
            }
        }
        if (digits == 0)
            return false;

        if (i < text.Length)
        {
            int shift = SuffixShift(text[i]);
            if (shift < 0 || i + 1 != text.Length)
                return false;
            if (v > ulong.MaxValue >> shift)
                return false;
            v <<= shift;
        }
        value = v;
        return true;
    }

    /// <summary>
    /// The shortest exact spelling of a size: a non-zero multiple of 1 KiB as N with the largest of
    /// K, M, G, T that divides it exactly (`4K`, `512M`, `3G`); anything else in decimal below 65536
    /// and in lower-case `0x` hex from 65536 on.
    /// </summary>
    public static string Format(ulong bytes)
    {
        if (bytes != 0 && bytes % KiB == 0)
            return WithSuffix(bytes);
        return bytes < 65536
            ? bytes.ToString(CultureInfo.InvariantCulture)
            : "0x" + bytes.ToString("x", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// An address: lower-case `0x` hex (`0x0`, `0xa0000`), or with a suffix when it is a non-zero
    /// exact multiple of 1 MiB (`32M`, `4G`).
    /// </summary>
    public static string FormatAddress(ulong address)
    {
        if (address != 0 && address % MiB == 0)
            return WithSuffix(address);
        return "0x" + address.ToString("x", CultureInfo.InvariantCulture);
    }

    private static string WithSuffix(ulong bytes)
    {
        if (bytes % TiB == 0)
            return (bytes / TiB).ToString(CultureInfo.InvariantCulture) + "T";
        if (bytes % GiB == 0)
            return (bytes / GiB).ToString(CultureInfo.InvariantCulture) + "G";
        if (bytes % MiB == 0)
            return (bytes / MiB).ToString(CultureInfo.InvariantCulture) + "M";
        return (bytes / KiB).ToString(CultureInfo.InvariantCulture) + "K";
    }

    private static int HexDigit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    private static int SuffixShift(char c) => char.ToUpperInvariant(c) switch
    {
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        'P' => 50,
        'E' => 60,
        _ => -1,
    };
}
