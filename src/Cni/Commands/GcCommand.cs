using ControlPlane.Contracts.Attachments;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cni.Commands;

/// <summary>
/// GC: detaches every endpoint on this node that was attached through this network configuration
/// (label controlplane.io/cni-network) and whose (container, interface) is not among
/// cni.dev/valid-attachments. Each detach is conditional on the endpoint's etag, so an endpoint
/// re-created meanwhile is not touched. Failures do not stop the sweep; they are reported together.
/// </summary>
public static class GcCommand
{
    public static async Task RunAsync(PluginConfig config)
    {
        // Like DEL, it needs no network: the configuration's name is what selects its endpoints.
        config.Validate("GC", "1.1.0", needsNetwork: false);
        var valid = config.ValidAttachments
            ?? throw new CniException(CniCodes.InvalidConfig, "GC needs cni.dev/valid-attachments", "an empty list, not a missing one, means that no attachment is valid");
        var keep = valid.Select(a => AttachmentLabels.Key(a.ContainerId, a.InterfaceName)).ToHashSet(StringComparer.Ordinal);
        using var agent = new AgentConnection(config.AgentSocket);
        var ours = await agent.ListAsync(new ListAttachmentsRequest { Labels = { [AttachmentLabels.CniNetwork] = config.Name } });
        var failures = new List<CniException>();
        foreach (var endpoint in ours.Endpoints)
        {
            if (!endpoint.Metadata.Labels.TryGetValue(AttachmentLabels.Attachment, out var key) || keep.Contains(key)) continue;
            try
            {
                await agent.DetachAsync(new DetachRequest { Namespace = endpoint.Metadata.Namespace, Name = endpoint.Metadata.Name, Etag = endpoint.Metadata.Etag });
            }
            catch (CniException e)
            {
                failures.Add(new CniException(e.Code, e.Message, $"{endpoint.Metadata.Namespace}/{endpoint.Metadata.Name}: {e.Details}"));
            }
        }
        if (failures.Count > 0)
            throw new CniException(failures[0].Code, $"GC could not detach {failures.Count} stale attachment(s)", string.Join("; ", failures.Select(f => f.Details)));
    }
}
