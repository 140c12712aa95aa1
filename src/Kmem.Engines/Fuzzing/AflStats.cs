using System.Globalization;

namespace Kmem.Engines.Fuzzing;

/// <summary>
/// One afl-fuzz instance's state, from its `fuzzer_stats` (written by AFL++ about once a minute)
/// and from its folders (read live: queue size, crashes, hangs, newest queue entry).
/// </summary>
public sealed record AflInstanceStats(string Name)
{
    public bool HasStats { get; init; }
    public long ExecsDone { get; init; }
    public double ExecsPerSec { get; init; }
    /// <summary>execs_ps_last_min when AFL++ writes it, else the run's average.</summary>
    public double ExecsPerSecRecent { get; init; }
    public int Corpus { get; init; }
    public int Crashes { get; init; }
    public int Hangs { get; init; }
    public double? Stability { get; init; }
    public DateTimeOffset? LastFind { get; init; }
    public long RunTimeSeconds { get; init; }
    public int? Pid { get; init; }
    /// <summary>When AFL++ last wrote fuzzer_stats (about once a minute).</summary>
    public DateTimeOffset? LastUpdate { get; init; }
}

public static class AflStats
{
    /// <summary>Parses `key : value` lines.</summary>
    public static Dictionary<string, string> ParseFile(string text)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in text.Split('\n'))
        {
            int c = line.IndexOf(':', StringComparison.Ordinal);
            if (c <= 0) continue;
            d[line[..c].Trim()] = line[(c + 1)..].Trim();
        }
        return d;
    }

    /// <summary>Reads an instance folder (SYNC/NAME). Every field tolerates a missing or half-written file.</summary>
    public static AflInstanceStats Read(string instanceDir)
    {
        string name = Path.GetFileName(instanceDir.TrimEnd('/'));
        Dictionary<string, string> f = [];
        try
        {
            string stats = Path.Combine(instanceDir, "fuzzer_stats");
            if (File.Exists(stats)) f = ParseFile(File.ReadAllText(stats));
        }
        catch (IOException) { }

        long L(params string[] keys)
        {
            foreach (var k in keys)
                if (f.TryGetValue(k, out var v) && long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long x)) return x;
            return 0;
        }
        double D(params string[] keys)
        {
            foreach (var k in keys)
                if (f.TryGetValue(k, out var v) && double.TryParse(v.TrimEnd('%'), NumberStyles.Float, CultureInfo.InvariantCulture, out double x)) return x;
            return 0;
        }

        var queue = QueueEntries(instanceDir);
        DateTimeOffset? lastFind = null;
        long lf = L("last_find", "last_path");
        if (lf > 0) lastFind = DateTimeOffset.FromUnixTimeSeconds(lf);
        // Newer than the stats file: the newest queue entry that AFL++ found itself (not synced, not a seed).
        foreach (var q in queue)
        {
            if (!q.Name.Contains("+cov", StringComparison.Ordinal)) continue;
            var t = new DateTimeOffset(File.GetLastWriteTimeUtc(q.FullName));
            if (lastFind is null || t > lastFind) lastFind = t;
        }
        return new AflInstanceStats(name)
        {
            HasStats = f.Count > 0,
            ExecsDone = L("execs_done"),
            ExecsPerSec = D("execs_per_sec"),
            ExecsPerSecRecent = f.ContainsKey("execs_ps_last_min") ? D("execs_ps_last_min") : D("execs_per_sec"),
            Corpus = queue.Count > 0 ? queue.Count : (int)L("corpus_count", "paths_total"),
            Crashes = Inputs(instanceDir, "crashes").Count,
            Hangs = Inputs(instanceDir, "hangs").Count,
            Stability = f.ContainsKey("stability") ? D("stability") : null,
            LastFind = lastFind,
            RunTimeSeconds = L("run_time"),
            Pid = f.ContainsKey("fuzzer_pid") ? (int)L("fuzzer_pid") : null,
            LastUpdate = L("last_update") is > 0 and var lu ? DateTimeOffset.FromUnixTimeSeconds(lu) : null,
        };
    }

    private static List<FileInfo> QueueEntries(string instanceDir)
    {
        var q = new DirectoryInfo(Path.Combine(instanceDir, "queue"));
        if (!q.Exists) return [];
        try { return q.GetFiles("id*").ToList(); }
        catch (IOException) { return []; }
    }

    /// <summary>
    /// Saved inputs of a kind ("crashes" or "hangs") of an instance, including the folders AFL++
    /// renames them to on an in-place resume (crashes.DATE). Relative to the instance folder.
    /// </summary>
    public static List<string> Inputs(string instanceDir, string kind)
    {
        var result = new List<string>();
        if (!Directory.Exists(instanceDir)) return result;
        foreach (string d in Directory.GetDirectories(instanceDir, kind + "*").Order(StringComparer.Ordinal))
        {
            try
            {
                foreach (string f in Directory.GetFiles(d, "id*").Order(StringComparer.Ordinal))
                    result.Add(Path.GetRelativePath(instanceDir, f));
            }
            catch (IOException) { }
        }
        return result;
    }

    /// <summary>The `time:` field of an AFL++ file name (ms since that instance started), if any.</summary>
    public static long? TimeField(string fileName)
    {
        foreach (string part in Path.GetFileName(fileName).Split(','))
            if (part.StartsWith("time:", StringComparison.Ordinal) && long.TryParse(part.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out long ms))
                return ms;
        return null;
    }
}
