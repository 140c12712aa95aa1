namespace Kmem.Model; internal static class Placeholder { }
