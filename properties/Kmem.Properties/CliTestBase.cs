using Xunit;

namespace Kmem.Properties;

/// <summary>What the CLI tests share: a temporary folder removed afterwards, and the CLI run in-process.</summary>
public abstract class CliTestBase : IDisposable
{
    protected readonly string dir;

    protected CliTestBase(string prefix) => dir = Directory.CreateTempSubdirectory(prefix).FullName;

    public void Dispose()
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }

    protected static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Kmem.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }
}
