namespace Kmem.Engines.Fuzzing;

/// <summary>Where the repository's fuzzing files are, seen from the working folder or the tool's own folder.</summary>
public static class FuzzPaths
{
    /// <summary>The folder holding Verify.sln above the working folder, else above the tool's folder; null outside a clone.</summary>
    public static string? RepoRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Verify.sln"))) return d.FullName;
        return null;
    }

    /// <summary>KMEM_FUZZ_BUILD, else fuzz/build in the clone.</summary>
    public static string? BuildDir() =>
        Environment.GetEnvironmentVariable("KMEM_FUZZ_BUILD") is { Length: > 0 } b ? b
        : RepoRoot() is { } root ? Path.Combine(root, "fuzz", "build") : null;

    /// <summary>corpus/FOLDER in the clone, if it exists.</summary>
    public static string? CorpusDir(string folder) =>
        RepoRoot() is { } root && Directory.Exists(Path.Combine(root, "corpus", folder)) ? Path.Combine(root, "corpus", folder) : null;

    /// <summary>An executable on PATH (or the path itself if it has a slash), or null.</summary>
    public static string? Which(string name)
    {
        if (name.Contains('/')) return File.Exists(name) ? name : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
