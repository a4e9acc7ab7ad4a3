using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Grpc.Core;

namespace ControlPlane.Contracts.Client;

/// <summary>Typed calls of one resource service: Create, Get, List, Update, Delete.</summary>
public sealed class ResourceClient<T, TList>
    where T : class, IMessage<T>
    where TList : class, IMessage<TList>
{
    private readonly CallInvoker _invoker;
    private readonly Method<T, T> _create, _update;
    private readonly Method<GetRequest, T> _get;
    private readonly Method<ListRequest, TList> _list;
    private readonly Method<DeleteRequest, DeleteResponse> _delete;

    public ResourceClient(CallInvoker invoker, string service, MessageParser<T> parser, MessageParser<TList> listParser)
    {
        _invoker = invoker;
        var fullName = "controlplane.v1." + service;
        var message = ProtoMarshaller.For(parser);
        _create = new Method<T, T>(MethodType.Unary, fullName, "Create", message, message);
        _update = new Method<T, T>(MethodType.Unary, fullName, "Update", message, message);
        _get = new Method<GetRequest, T>(MethodType.Unary, fullName, "Get", ProtoMarshaller.For(GetRequest.Parser), message);
        _list = new Method<ListRequest, TList>(MethodType.Unary, fullName, "List", ProtoMarshaller.For(ListRequest.Parser), ProtoMarshaller.For(listParser));
        _delete = new Method<DeleteRequest, DeleteResponse>(MethodType.Unary, fullName, "Delete",
            ProtoMarshaller.For(DeleteRequest.Parser), ProtoMarshaller.For(DeleteResponse.Parser));
    }

    public Task<T> CreateAsync(T resource, CallOptions options = default) =>
        _invoker.AsyncUnaryCall(_create, null, options, resource).ResponseAsync;

    public Task<T> GetAsync(string ns, string name, CallOptions options = default) =>
        _invoker.AsyncUnaryCall(_get, null, options, new GetRequest { Namespace = ns, Name = name }).ResponseAsync;

    public Task<TList> ListAsync(ListRequest request, CallOptions options = default) =>
        _invoker.AsyncUnaryCall(_list, null, options, request).ResponseAsync;

    public Task<T> UpdateAsync(T resource, CallOptions options = default) =>
        _invoker.AsyncUnaryCall(_update, null, options, resource).ResponseAsync;

    public Task DeleteAsync(string ns, string name, string etag = "", CallOptions options = default) =>
        _invoker.AsyncUnaryCall(_delete, null, options, new DeleteRequest { Namespace = ns, Name = name, Etag = etag }).ResponseAsync;
}
