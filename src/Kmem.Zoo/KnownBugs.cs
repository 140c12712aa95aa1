namespace Kmem.Zoo;

public static class KnownBugs
{
    public static readonly IReadOnlyList<TargetInfo> All = [];
}
