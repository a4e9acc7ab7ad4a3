using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.V1;
using Google.Protobuf;

namespace ControlPlane.Contracts.Client;

/// <summary>Typed calls of one resource service: Create, Get, List, Update, Delete.</summary>
public sealed class ResourceClient<T, TList>(GrpcClient client, string service, MessageParser<T> parser, MessageParser<TList> listParser)
    where T : class, IMessage<T>
    where TList : class, IMessage<TList>
{
    private readonly string _path = $"/controlplane.v1.{service}/";

    public Task<T> CreateAsync(T resource, CallOptions options = default) =>
        client.UnaryAsync(_path + "Create", resource, parser, options);

    public Task<T> GetAsync(string ns, string name, CallOptions options = default) =>
        client.UnaryAsync(_path + "Get", new GetRequest { Namespace = ns, Name = name }, parser, options);

    public Task<TList> ListAsync(ListRequest request, CallOptions options = default) =>
        client.UnaryAsync(_path + "List", request, listParser, options);

    public Task<T> UpdateAsync(T resource, CallOptions options = default) =>
        client.UnaryAsync(_path + "Update", resource, parser, options);

    public Task DeleteAsync(string ns, string name, string etag = "", CallOptions options = default) =>
        client.UnaryAsync(_path + "Delete", new DeleteRequest { Namespace = ns, Name = name, Etag = etag }, DeleteResponse.Parser, options);
}
