using System.CommandLine;
using System.Globalization;
using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

namespace Kmem.Cli.Commands;

public static class ListCommands
{
    // ------------------------------------------------------------------ listings

    public static Command CreateProfiles(TextWriter stdout)
    {
        var cmd = new Command("profiles", "list the kernel profiles and their limits");
        cmd.SetAction(_ =>
        {
            ProfileTable.Write(stdout);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    public static Command CreateTargets(TextWriter stdout)
    {
        var cmd = new Command("targets", "list every target; known-buggy ones are named buggy:NAME with the bug they carry");
        cmd.SetAction(_ =>
        {
            foreach (var t in TargetRegistry.All)
                stdout.WriteLine(t.Bug is null ? $"{t.Name}\tthe reference allocator (no planted bug)" : $"{t.Name}\t{t.Bug} [{t.Source}]");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
