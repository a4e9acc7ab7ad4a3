using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

/// <summary>The export of one service to the ClusterSet (key "namespace/name", the service's).</summary>
[Alias("controlplane.IServiceExportGrain")]
public interface IServiceExportGrain : IResourceGrain<ServiceExport>
{
    /// <summary>Sets the export's conditions (by the ClusterSet controller); written only when they change.</summary>
    [Alias("SetStatus")]
    Task SetStatusAsync(ServiceExportStatus status);
}
