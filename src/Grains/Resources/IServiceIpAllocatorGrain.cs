namespace ControlPlane.Grains.Resources;

/// <summary>
/// Hands out service virtual IPs from the configured service CIDR(s), one activation for the
/// cluster (key "cluster"). What is held is rebuilt from the store's claims on activation; an
/// address becomes durable with the service's commit, which the store refuses if another
/// service holds it.
/// </summary>
[Alias("controlplane.IServiceIpAllocatorGrain")]
public interface IServiceIpAllocatorGrain : IGrainWithStringKey
{
    /// <summary>One address per configured family for <paramref name="holder"/>, or RESOURCE_EXHAUSTED.</summary>
    [Alias("Allocate")]
    Task<string[]> AllocateAsync(string holder);

    /// <summary>Gives back addresses, but only those <paramref name="holder"/> still holds here.</summary>
    [Alias("Release")]
    Task ReleaseAsync(string holder, string[] addresses);

    /// <summary>Rebuilds what is held from the store.</summary>
    [Alias("Resync")]
    Task ResyncAsync();
}
