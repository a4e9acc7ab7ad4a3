namespace ControlPlane.Runtime.Grains;

/// <summary>
/// Admits the calls of one activation turn by turn: a writing call runs alone, read-only calls
/// run together. First come, first served: a waiting writer holds back readers that arrive
/// after it, so writers are never starved.
/// </summary>
internal sealed class TurnGate
{
    private readonly Queue<(bool ReadOnly, TaskCompletionSource Waiter)> _waiting = new();
    private int _readers;
    private bool _writer;

    public Task EnterAsync(bool readOnly)
    {
        lock (_waiting)
        {
            if (_waiting.Count == 0 && !_writer && (readOnly || _readers == 0))
            {
                if (readOnly) { _readers++; } else { _writer = true; }
                return Task.CompletedTask;
            }
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Enqueue((readOnly, waiter));
            return waiter.Task;
        }
    }

    public void Exit(bool readOnly)
    {
        List<TaskCompletionSource>? admitted = null;
        lock (_waiting)
        {
            if (readOnly) { _readers--; } else { _writer = false; }
            while (_waiting.Count > 0 && !_writer)
            {
                var (nextReadOnly, waiter) = _waiting.Peek();
                if (!nextReadOnly && _readers > 0)
                {
                    break;
                }
                _waiting.Dequeue();
                if (nextReadOnly) { _readers++; } else { _writer = true; }
                (admitted ??= []).Add(waiter);
            }
        }
        if (admitted is not null)
        {
            foreach (var waiter in admitted)
            {
                waiter.SetResult();
            }
        }
    }
}
