using System.Numerics;

namespace Kmem.Reference;

/// <summary>
/// Arrays the allocator gave back (a vmalloc area's page list, a slab's bitmap), kept by power-of-two
/// length for the next that needs one, so that an operation allocates nothing once the workload has
/// given back as many as it later needs. Not ArrayPool.Shared: it trims itself after a gen-2 GC and
/// keeps per-thread storage, so whether a rent allocated depended on the rest of the process.
/// </summary>
internal sealed class Spares<T>
{
    private readonly Stack<T[]>?[] byLog = new Stack<T[]>?[32];

    /// <summary>
    /// An array of at least <paramref name="length"/> elements (a power of two), with stale contents.
    /// Lengths stay far below 2^31: a page list holds at most the managed frames (2^26 at the 256 GiB
    /// of Sizes.MaxRamBytes), a bitmap a few words.
    /// </summary>
    public T[] Rent(int length)
    {
        int log = length <= 1 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)length - 1);
        return byLog[log] is { Count: > 0 } spare ? spare.Pop() : new T[1 << log];
    }

    /// <summary>Keeps an array from <see cref="Rent"/> for reuse.</summary>
    public void Return(T[] array) => (byLog[BitOperations.Log2((uint)array.Length)] ??= new()).Push(array);
}
