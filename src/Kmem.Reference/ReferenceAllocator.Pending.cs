using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Reference;

// PENDING (issue 3): these operations are being implemented; until then they answer EINVAL, which
// the model reports as a `limits` violation, so nothing here can pass a check by accident.
public partial class ReferenceAllocator
{
    public virtual TargetResult Kmalloc(ulong size, Gfp gfp, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult Kfree(ulong address) => TargetResult.Inval;
    public virtual TargetResult KmemCacheCreate(ulong size, ulong align, string? name, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult KmemCacheAlloc(ulong cache, Gfp gfp, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult KmemCacheFree(ulong cache, ulong address) => TargetResult.Inval;
    public virtual TargetResult KmemCacheDestroy(ulong cache, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult Vmalloc(ulong size, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult Vfree(ulong address) => TargetResult.Inval;
    public virtual TargetResult RequestMemRegion(ulong start, ulong size, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult ReleaseMemRegion(ulong start, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult Ioremap(ulong start, ulong size, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult Iounmap(ulong address, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult DmaAllocCoherent(ulong size, Gfp gfp, bool atomicContext) => TargetResult.Inval;
    public virtual TargetResult DmaFreeCoherent(ulong address) => TargetResult.Inval;
}
