namespace ControlPlane.Serialization.Bench;

// The content of controlplane.v1.Endpoint as [GenerateSerializer] records: the alternative to
// carrying the protobuf message itself.

[GenerateSerializer, Immutable]
public sealed record PortRecord([property: Id(0)] string Name, [property: Id(1)] int Protocol, [property: Id(2)] uint Port);

[GenerateSerializer, Immutable]
public sealed record MetaRecord(
    [property: Id(0)] string Name, [property: Id(1)] string Namespace, [property: Id(2)] Dictionary<string, string> Labels,
    [property: Id(3)] string Etag, [property: Id(4)] string Uid, [property: Id(5)] DateTimeOffset CreateTime);

[GenerateSerializer, Immutable]
public sealed record EndpointRecord(
    [property: Id(0)] MetaRecord Metadata,
    [property: Id(1)] string Network, [property: Id(2)] string Node, [property: Id(3)] List<PortRecord> Ports,
    [property: Id(4)] string Hostname, [property: Id(5)] string Subdomain, [property: Id(6)] bool Ready,
    [property: Id(7)] List<string> Ips, [property: Id(8)] string Mac, [property: Id(9)] string Ipv4Gateway, [property: Id(10)] string Ipv6Gateway,
    [property: Id(11)] uint Mtu, [property: Id(12)] bool EffectiveReady, [property: Id(13)] bool NodeReady);
