using System.Diagnostics;

namespace ControlPlane.Tests.Shared;

/// <summary>
/// Waits for a state that no event announces (what the kernel's data path lets through, say) by
/// asking again until it holds or the time is up.
/// </summary>
internal static class Eventually
{
    /// <summary>
    /// Asks <paramref name="condition"/> every 50 ms until it holds; after <paramref name="within"/>
    /// the test fails with <paramref name="explain"/>.
    /// </summary>
    public static async Task HoldsAsync(Func<Task<bool>> condition, TimeSpan within, Func<string> explain)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > within) Assert.Fail(explain());
            await Task.Delay(50);
        }
    }
}
