namespace Kmem.Scenarios;

/// <summary>
/// A malformed scenario: where (file, 1-based line and column of the offending token) and why.
/// <see cref="Exception.Message"/> is `FILE:LINE:COLUMN: reason` (`&lt;input&gt;` when there is no
/// file), which is what `kmem-verify` prints before exiting with code 2.
/// </summary>
public sealed class ScenarioException : Exception
{
    public ScenarioException(string? file, int line, int column, string reason)
        : base(Format(file, line, column, reason))
    {
        File = file;
        Line = line;
        Column = column;
        Reason = reason;
    }

    /// <summary>The file name as given to the parser; null when the text did not come from a file.</summary>
    public string? File { get; }

    /// <summary>1-based line.</summary>
    public int Line { get; }

    /// <summary>1-based column of the offending token (or just past the last token when something is missing).</summary>
    public int Column { get; }

    /// <summary>The sentence saying what is wrong, without the position.</summary>
    public string Reason { get; }

    private static string Format(string? file, int line, int column, string reason) =>
        $"{file ?? "<input>"}:{line}:{column}: {reason}";
}
