using Kmem.Scenarios;

namespace Kmem.Target;

/// <summary>What a target answered: the outcome, and the address it returned when it succeeded.</summary>
public readonly record struct TargetResult(Outcome Outcome, ulong Address = 0)
{
    public static TargetResult Ok(ulong address = 0) => new(Outcome.Ok, address);
    public static readonly TargetResult Bug = new(Outcome.BUG);
    public static readonly TargetResult Inval = new(Outcome.EINVAL);
    public static readonly TargetResult NoMem = new(Outcome.ENOMEM);
}

/// <summary>
/// An allocator under test. The runner and the model never know which one they are checking.
/// Addresses are physical byte addresses (alloc_pages returns the block's first frame's address,
/// as page_to_phys would). Misuse must come back as <see cref="Outcome.BUG"/>, never an exception.
/// </summary>
public interface ITarget
{
    string Name { get; }

    /// <summary>Sets up memblock from the machine: banks, holes, mem=, memmap=, the low reservation.</summary>
    void Boot(MachineConfig machine);

    TargetResult MemblockAlloc(ulong size, ulong align);
    TargetResult MemblockFree(ulong address);
    /// <summary>Hands every usable, unreserved, unallocated frame to the buddy allocator.</summary>
    TargetResult MemInit();

    TargetResult AllocPages(int order, Gfp gfp, bool atomicContext);
    /// <summary>free_pages(addr, order). Address 0 is NULL: a no-op that succeeds.</summary>
    TargetResult FreePages(ulong address, int order);
}

public readonly record struct FreeBlock(ulong Pfn, int Order, Zone Zone);

/// <summary>
/// Optional view into a buddy allocator, for the structural invariants (alignment, disjointness,
/// maximal coalescing). A target without it is still checked black-box by exactness and ownership.
/// </summary>
public interface IBuddyIntrospection
{
    /// <summary>Every block on the free lists, in any order.</summary>
    IEnumerable<FreeBlock> FreeBlocks();
}
