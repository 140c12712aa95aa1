using System.Text;
using System.Text.Json;
using Kmem.Runner;
using Kmem.Scenarios;

namespace Kmem.Report;

/// <summary>Sizes of a scenario, for shrink reports: operations and boot line.</summary>
public readonly record struct ScenarioSize(int Ops, int BootParams, int HeaderItems)
{
    public static ScenarioSize Of(Scenario s) => new(s.Ops.Count, s.Header.Boot.Count,
        s.Header.Boot.Count + s.Header.Boot.Sum(b => b.Entries.Count) + s.Header.Holes.Count + s.Header.Ram.Count);
}

/// <summary>
/// `--json`: one JSON object per verdict, on one line, as documented in docs/json.md
/// (schema "kmem-verify/verdict", version 1). Fields are always present, null when they do not apply.
/// </summary>
public sealed class VerdictJson
{
    public const string Schema = "kmem-verify/verdict";
    public const int SchemaVersion = 1;

    public required string Command { get; init; }
    public required string ToolVersion { get; init; }
    public required Verdict Verdict { get; init; }
    public required string Target { get; init; }
    public required string Profile { get; init; }
    /// <summary>The scenario the verdict is about, as `.kmem` text (the shrunk one for check and shrink).</summary>
    public string? ScenarioText { get; init; }
    public string? File { get; init; }
    public ulong? Seed { get; init; }
    public IReadOnlyList<string> Explanation { get; init; } = [];
    /// <summary>Command-specific members, written after the common ones.</summary>
    public Action<Utf8JsonWriter>? Extra { get; init; }

    public string ToJson()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            var v = Verdict;
            w.WriteStartObject();
            w.WriteString("schema", Schema);
            w.WriteNumber("schemaVersion", SchemaVersion);
            w.WriteString("tool", "kmem-verify");
            w.WriteString("toolVersion", ToolVersion);
            w.WriteString("command", Command);
            w.WriteBoolean("ok", v.Ok);
            w.WriteString("signature", v.Signature);
            Str(w, "invariant", v.Invariant);
            Str(w, "operation", v.Ok ? null : v.Operation);
            Num(w, "step", v.Ok ? null : v.Step);
            Num(w, "line", v.Ok || v.Line == 0 ? null : v.Line);
            Str(w, "message", v.Ok ? null : v.Message);
            w.WriteNumber("executed", v.Executed);
            w.WriteStartArray("explanation");
            foreach (var l in Explanation) w.WriteStringValue(l);
            w.WriteEndArray();
            w.WriteString("target", Target);
            w.WriteString("profile", Profile);
            Str(w, "seed", Seed?.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Str(w, "file", File);
            Str(w, "scenario", ScenarioText);
            Extra?.Invoke(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static void Str(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name); else w.WriteString(name, value);
    }

    public static void Num(Utf8JsonWriter w, string name, long? value)
    {
        if (value is null) w.WriteNull(name); else w.WriteNumber(name, value.Value);
    }

    public static void Size(Utf8JsonWriter w, string name, ScenarioSize s)
    {
        w.WriteStartObject(name);
        w.WriteNumber("ops", s.Ops);
        w.WriteNumber("bootParams", s.BootParams);
        w.WriteNumber("headerItems", s.HeaderItems);
        w.WriteEndObject();
    }

    /// <summary>The `trace` member of `replay --json --trace`.</summary>
    public static void Trace(Utf8JsonWriter w, Recording rec)
    {
        w.WriteStartArray("trace");
        foreach (var s in rec.Steps)
        {
            w.WriteStartObject();
            w.WriteNumber("step", s.Step);
            Num(w, "line", s.Line == 0 ? null : s.Line);
            w.WriteString("operation", s.Operation);
            w.WriteString("text", s.Text);
            Str(w, "outcome", s.Operation is "boot" or "end" ? null : s.Outcome.ToString());
            Str(w, "address", s.Address == 0 ? null : "0x" + s.Address.ToString("x"));
            w.WriteString("note", s.Note);
            w.WriteStartArray("changes");
            foreach (var c in s.Changes) w.WriteStringValue(c);
            w.WriteEndArray();
            w.WriteBoolean("failing", s.Failing);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
