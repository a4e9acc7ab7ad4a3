namespace ControlPlane.NodeAgent.Sync;

/// <summary>
/// How far into the watch the node's kernel is: the newest resume token whose changes every
/// consumer of the view (the overlay reconciler, the table worker) has programmed. Each watch
/// step (an event applied to the view, or a bookmark) gets a sequence number when it happens,
/// and its token right after; a step is marked for the consumers it concerns, a consumer takes
/// every step applied so far with its next pass, and confirms the pass once the kernel
/// acknowledged it. A consumer with nothing outstanding is at the newest step, so changes
/// that concern nobody (and bookmarks) move the position at once. Pure logic, not thread-safe:
/// <see cref="WatchSync"/> calls it under its lock.
/// </summary>
public sealed class ProgrammedProgress
{
    /// <summary>The consumers of the view.</summary>
    public enum Consumer { Overlay, Table }

    private const int Consumers = 2;
    // Per consumer: the first step that concerns it and it has not taken (0: none), and the first
    // step of what it has taken and not yet programmed (0: none).
    private readonly long[] _untaken = new long[Consumers];
    private readonly long[] _inFlight = new long[Consumers];
    // Tokens of the steps from the programmed one on: the oldest is the programmed position.
    private readonly Queue<(long Step, string Token)> _tokens = new();
    private long _step;
    // The newest step that has its token.
    private long _tokened;
    private string? _programmed;

    /// <summary>The newest token whose changes are all programmed, or null before the first list is.</summary>
    public string? Programmed => _programmed;

    /// <summary>An event was applied to the view: a new step (its token follows with <see cref="Step"/>).</summary>
    public void Applied() => _step++;

    /// <summary>The step just applied concerns <paramref name="consumer"/>.</summary>
    public void Concerns(Consumer consumer)
    {
        ref var untaken = ref _untaken[(int)consumer];
        if (untaken == 0) untaken = _step;
    }

    /// <summary>
    /// The token of the step just applied, or of a bookmark (a step of its own); returns true if
    /// the programmed position moved.
    /// </summary>
    public bool Step(string token)
    {
        if (_tokened == _step) _step++;
        _tokened = _step;
        _tokens.Enqueue((_step, token));
        return Settle();
    }

    /// <summary>A consumer starts a pass over everything up to now; returns the step it covers.</summary>
    public long Take(Consumer consumer)
    {
        var c = (int)consumer;
        if (_untaken[c] != 0)
        {
            if (_inFlight[c] == 0) _inFlight[c] = _untaken[c];
            _untaken[c] = 0;
        }
        return _step;
    }

    /// <summary>
    /// A consumer's pass that covered up to <paramref name="step"/> ended. Programmed: the kernel
    /// has it all. Otherwise what it took stays outstanding until a later pass succeeds. Returns
    /// true if the programmed position moved.
    /// </summary>
    public bool Done(Consumer consumer, long step, bool programmed)
    {
        var c = (int)consumer;
        if (!programmed) return false;
        // Steps marked after the take are later than it, so they stay untaken.
        if (_inFlight[c] != 0 && _inFlight[c] <= step) _inFlight[c] = 0;
        return Settle();
    }

    /// <summary>Forgets everything (a new list starts over): nothing is programmed until it is.</summary>
    public void Reset()
    {
        Array.Clear(_untaken);
        Array.Clear(_inFlight);
        _tokens.Clear();
        _tokened = _step;
        _programmed = null;
    }

    private bool Settle()
    {
        // The first step some consumer still owes; every step before it is programmed.
        var owed = long.MaxValue;
        for (var c = 0; c < Consumers; c++)
        {
            if (_inFlight[c] != 0) owed = Math.Min(owed, _inFlight[c]);
            if (_untaken[c] != 0) owed = Math.Min(owed, _untaken[c]);
        }
        string? newest = null;
        while (_tokens.Count > 0 && _tokens.Peek().Step < owed)
        {
            newest = _tokens.Dequeue().Token;
        }
        if (newest is null || newest == _programmed) return false;
        _programmed = newest;
        return true;
    }
}
