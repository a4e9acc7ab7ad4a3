namespace ControlPlane.NodeAgent;

/// <summary>
/// Wakes a worker thread: any number of signals while it works coalesce into one more pass.
/// </summary>
public sealed class WakeSignal
{
    private readonly SemaphoreSlim _semaphore = new(0, 1);

    public void Set()
    {
        if (_semaphore.CurrentCount == 0)
        {
            try { _semaphore.Release(); } catch (SemaphoreFullException) { }
        }
    }

    /// <summary>Waits for a signal or the timeout (a periodic resync); throws when cancelled.</summary>
    public void Wait(TimeSpan timeout, CancellationToken cancellationToken) => _semaphore.Wait(timeout, cancellationToken);
}
