using ControlPlane.Contracts.V1;
using Orleans.Concurrency;

namespace ControlPlane.Grains.Resources;

/// <summary>The import of one exported service (key "namespace/name"), written only by the ClusterSet controller.</summary>
[Alias("controlplane.IServiceImportGrain")]
public interface IServiceImportGrain : IGrainWithStringKey
{
    [ReadOnly]
    [Alias("Get")]
    Task<ServiceImport> GetAsync();

    /// <summary>
    /// Stores the import if it differs from the stored one. spec.ips is the grain's: a
    /// CLUSTER_SET_IP import keeps its addresses and gets one from the service ranges for each
    /// family of spec.ip_families it lacks; addresses of families no longer wanted are given back.
    /// </summary>
    [Alias("Put")]
    Task PutAsync(ServiceImport import);

    [Alias("Delete")]
    Task DeleteAsync();
}
