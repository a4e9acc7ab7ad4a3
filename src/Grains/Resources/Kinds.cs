namespace ControlPlane.Grains.Resources;

/// <summary>Kind names as recorded in the store and the change log. Never rename one.</summary>
public static class Kinds
{
    public const string Namespace = "Namespace";
    public const string Network = "Network";
    public const string Node = "Node";
    public const string Endpoint = "Endpoint";
    public const string Service = "Service";
    public const string NetworkPolicy = "NetworkPolicy";
    public const string ServiceEndpoints = "ServiceEndpoints";
    public const string NetworkRegistry = "NetworkRegistry";
    public const string ServiceIpAllocator = "ServiceIpAllocator";
    public const string ClusterPeer = "ClusterPeer";
    public const string ServiceExport = "ServiceExport";
    public const string ServiceImport = "ServiceImport";

    public static readonly IReadOnlyList<string> Api = [Namespace, Network, Node, Endpoint, Service, NetworkPolicy, ServiceEndpoints, ClusterPeer, ServiceExport, ServiceImport];
}
