using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Reference;

// request_mem_region / release_mem_region (docs/semantics.md "request_mem_region and ioremap"): the
// resource tree is System RAM (busy) plus the live claims, which never overlap each other.
public partial class ReferenceAllocator
{
    /// <summary>Live claims <c>[Start, Last]</c> (bytes, inclusive), sorted by start (a variant may let them overlap).</summary>
    private readonly List<(ulong Start, ulong Last)> _claims = [];

    /// <summary>
    /// Whether the claim <c>[start, last]</c> (bytes, inclusive) conflicts: it overlaps System RAM
    /// (every frame the firmware map, after memmap= and mem=, calls usable RAM, including the low
    /// reservation and memblock allocations) or a live claim. A variant ignores one of the two.
    /// </summary>
    protected virtual bool ResourceConflicts(ulong start, ulong last) =>
        SystemRamConflicts(start, last) || ClaimConflicts(start, last);

    /// <summary>Whether <c>[start, last]</c> (bytes, inclusive) touches a System RAM frame.</summary>
    protected bool SystemRamConflicts(ulong start, ulong last)
    {
        ulong startPfn = start >> _shift;
        ulong endPfn = (last >> _shift) + 1; // last >> shift < 2^52: no overflow
        return Overlaps(_systemRam, startPfn, endPfn);
    }

    /// <summary>Whether <c>[start, last]</c> (bytes, inclusive) overlaps a live claim.</summary>
    protected bool ClaimConflicts(ulong start, ulong last)
    {
        int i = FirstClaimAfter(start);
        if (i > 0 && _claims[i - 1].Last >= start) return true;
        return i < _claims.Count && _claims[i].Start <= last;
    }

    /// <summary>The index of the first claim starting above <paramref name="start"/>.</summary>
    private int FirstClaimAfter(ulong start)
    {
        int lo = 0, hi = _claims.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_claims[mid].Start > start) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    public virtual TargetResult RequestMemRegion(ulong start, ulong size, bool atomicContext)
    {
        EnsureMemInit();
        if (atomicContext) return TargetResult.Bug;
        if (size == 0 || size > ulong.MaxValue - start) return TargetResult.Inval; // start + size must not pass 2^64
        ulong last = start + size - 1;
        if (ResourceConflicts(start, last)) return new TargetResult(Outcome.EBUSY);
        _claims.Insert(FirstClaimAfter(start), (start, last));
        return TargetResult.Ok(start);
    }

    public virtual TargetResult ReleaseMemRegion(ulong start, bool atomicContext)
    {
        EnsureMemInit();
        if (atomicContext) return TargetResult.Bug;
        int i = FirstClaimAfter(start) - 1; // the last claim starting at or below start
        if (i < 0 || _claims[i].Start != start) return TargetResult.Bug; // "Trying to free nonexistent resource"
        _claims.RemoveAt(i);
        return TargetResult.Ok();
    }
}
