namespace ControlPlane.Runtime.Grains;

/// <summary>
/// One live grain instance: its turn gate, lazy state load and idle bookkeeping. A call first
/// acquires the activation (which fails once it is deactivated, so the caller activates a new
/// one), then waits for its turn.
/// </summary>
internal sealed class Activation(Grain grain)
{
    private readonly TurnGate _gate = new();
    private readonly object _lock = new();
    private int _inflight;
    private bool _deactivated;
    private bool _activated;
    private long _lastUsed = Environment.TickCount64;

    public Grain Grain { get; } = grain;

    public bool TryAcquire()
    {
        lock (_lock)
        {
            if (_deactivated)
            {
                return false;
            }
            _inflight++;
            return true;
        }
    }

    public void Release()
    {
        lock (_lock)
        {
            _inflight--;
            _lastUsed = Environment.TickCount64;
        }
    }

    /// <summary>Marks the activation dead if it has been idle since <paramref name="idleSince"/>.</summary>
    public bool TryDeactivate(long idleSince)
    {
        lock (_lock)
        {
            if (_inflight > 0 || _lastUsed > idleSince)
            {
                return false;
            }
            _deactivated = true;
            return true;
        }
    }

    public async Task<T> InvokeAsync<T>(Func<Grain, Task<T>> call, bool readOnly)
    {
        // Loading and activation are writes to the instance: they take an exclusive turn.
        if (!Volatile.Read(ref _activated) && readOnly)
        {
            await _gate.EnterAsync(false).ConfigureAwait(false);
            try
            {
                await EnsureActivatedAsync().ConfigureAwait(false);
            }
            finally
            {
                _gate.Exit(false);
            }
        }
        await _gate.EnterAsync(readOnly).ConfigureAwait(false);
        try
        {
            await EnsureActivatedAsync().ConfigureAwait(false);
            return await call(Grain).ConfigureAwait(false);
        }
        finally
        {
            _gate.Exit(readOnly);
        }
    }

    private async Task EnsureActivatedAsync()
    {
        await Grain.LoadStateAsync().ConfigureAwait(false);
        if (!_activated)
        {
            await Grain.OnActivateAsync().ConfigureAwait(false);
            Volatile.Write(ref _activated, true);
        }
    }
}
