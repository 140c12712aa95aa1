using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

namespace Kmem.Properties;

/// <summary>Finds the repository's corpus/ folder from the test's output directory.</summary>
public static class Corpus
{
    public static string Root
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Verify.sln"))) return d.FullName;
            throw new InvalidOperationException("Verify.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static IEnumerable<object[]> Files(string folder) =>
        Directory.GetFiles(Path.Combine(Root, "corpus", folder), "*.kmem").Order(StringComparer.Ordinal)
            .Select(f => new object[] { Path.GetFileName(f) });

    public static Scenario Load(string folder, string name)
    {
        string path = Path.Combine(Root, "corpus", folder, name);
        return ScenarioParser.Parse(File.ReadAllText(path), path);
    }

    /// <summary>A `# key: value` line of the header comment.</summary>
    public static string? HeaderValue(Scenario s, string key) =>
        s.Header.Comments.Select(c => c.Trim()).FirstOrDefault(c => c.StartsWith(key + ":", StringComparison.Ordinal))?[(key.Length + 1)..].Trim();

    public static Verdict Run(Scenario s, string target = "reference") =>
        ScenarioRunner.Run(s, TargetRegistry.Get(target)!.Create);
}
