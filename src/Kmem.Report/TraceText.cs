using Kmem.Scenarios;

namespace Kmem.Report;

/// <summary>`replay --trace`: every step with its outcome, what the model decided, and what changed.</summary>
public static class TraceText
{
    public static void Write(Recording rec, TextWriter w)
    {
        foreach (var s in rec.Steps)
        {
            string op = s.Text.Length > 0 ? s.Text : s.Operation;
            string outcome = s.Operation == "boot" || s.Operation == "end" ? "" : $"=> {s.Outcome}{(s.Outcome == Outcome.Ok && s.Address != 0 ? $" @0x{s.Address:x}" : "")}";
            string line = s.Line > 0 ? $"line {s.Line,4}" : "         ";
            w.WriteLine($"  step {s.Step,4} {line}  {Clip(op, 34),-34} {outcome}{(s.Note.Length > 0 ? $"   ({s.Note})" : "")}".TrimEnd());
            foreach (var c in s.Changes) w.WriteLine($"{"",22}- {c}");
            if (s.Failing)
                w.WriteLine($"{"",22}>>> the '{rec.Verdict.Invariant}' check fails here");
        }
    }

    /// <summary>The failure explained, as printed after the verdict line.</summary>
    public static void WriteExplanation(Recording rec, TextWriter w)
    {
        if (rec.Verdict.Ok || rec.Explanation.Count == 0) return;
        w.WriteLine("  Why:");
        foreach (var l in rec.Explanation) WriteWrapped(w, l, "    ", 100);
    }

    public static void WriteWrapped(TextWriter w, string text, string indent, int width)
    {
        var words = text.Split(' ');
        var line = new System.Text.StringBuilder(indent);
        bool first = true;
        foreach (var word in words)
        {
            if (!first && line.Length + 1 + word.Length > width)
            {
                w.WriteLine(line.ToString());
                line.Clear().Append(indent).Append("  ");
                first = true;
            }
            if (!first) line.Append(' ');
            line.Append(word);
            first = false;
        }
        if (!first) w.WriteLine(line.ToString());
    }

    private static string Clip(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
