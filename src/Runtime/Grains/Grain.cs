namespace ControlPlane.Runtime.Grains;

/// <summary>
/// Base of every grain class. One instance serves one activation; the runtime calls it one turn
/// at a time (read-only methods excepted) so the instance needs no locks.
/// </summary>
public abstract class Grain
{
    private GrainContext? _context;

    internal GrainContext Context => _context ?? throw new InvalidOperationException("the grain is not activated");

    /// <summary>The key this activation serves.</summary>
    protected string Key => Context.Id.Key;

    /// <summary>References to other grains.</summary>
    protected IGrainFactory GrainFactory => Context.Runtime;

    /// <summary>
    /// Committed state of all objects, for grains whose in-memory state is derived from other
    /// objects (allocators rebuilding what is held). Never write through it.
    /// </summary>
    protected Storage.IGrainStore Store => Context.Runtime.Store;

    internal void Attach(GrainContext context) => _context = context;

    /// <summary>Loads persistent state; called before the first call and after a failed write.</summary>
    internal virtual Task LoadStateAsync() => Task.CompletedTask;

    /// <summary>Runs once after the state is loaded, before the first call is served.</summary>
    protected internal virtual Task OnActivateAsync() => Task.CompletedTask;
}
