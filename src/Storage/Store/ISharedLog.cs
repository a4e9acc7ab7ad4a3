namespace ControlPlane.Storage;

/// <summary>
/// A store that several silos write. Every silo learns every change by reading the change log
/// back (its own writes included), woken when another writer commits; the group committer then
/// publishes nothing itself.
/// </summary>
public interface ISharedLog
{
    /// <summary>Completes when some writer may have committed since the last call, or after <paramref name="timeout"/>.</summary>
    Task WaitForChangesAsync(TimeSpan timeout, CancellationToken cancellationToken);
}
