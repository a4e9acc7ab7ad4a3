namespace ControlPlane.Cli.Apply;

/// <summary>Runs work items with bounded concurrency, keeping results in input order.</summary>
internal static class Bounded
{
    public static async Task<TResult[]> MapAsync<T, TResult>(IReadOnlyList<T> items, int concurrency, Func<T, CancellationToken, Task<TResult>> work, CancellationToken cancellationToken)
    {
        var results = new TResult[items.Count];
        await Parallel.ForAsync(0, items.Count, new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken },
            async (i, token) => results[i] = await work(items[i], token));
        return results;
    }
}
