using ControlPlane.Cli.Manifests;
using Google.Protobuf;

namespace ControlPlane.Cli.Apply;

/// <summary>What apply will do with one document: create it, or update the stored object (<see cref="Existing"/>) under an etag.</summary>
internal sealed record PlannedChange(ManifestDocument Document, IMessage? Existing)
{
    public bool IsCreate => Existing is null;

    /// <summary>The etag the update is conditional on: the manifest's own, else the one just read.</summary>
    public string Etag => Document.Meta.Etag.Length > 0 ? Document.Meta.Etag : Existing is null ? string.Empty : Resources.ResourceKind.MetaOf(Existing).Etag;
}
