using System.Buffers.Text;
using System.Text;
using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;
using ControlPlane.Runtime.Changes;
using ControlPlane.Runtime.Errors;
using ControlPlane.Runtime.Grains;
using Google.Protobuf;
using Google.Protobuf.Collections;

namespace ControlPlane.Silo.Api;

/// <summary>
/// Binds the Create/Get/List/Update/Delete methods of one resource's gRPC service to its grain.
/// Writes and Get go through the object's grain; List reads committed state from the store, one
/// consistent snapshot per page, with the resume token of that snapshot.
/// </summary>
public sealed class ResourceApi(GrpcServer server, GrainRuntime runtime)
{
    public const int DefaultPageSize = 100;
    public const int MaxPageSize = 1000;

    public void MapCrud<T, TGrain, TList>(string service, ResourceKind<T> kind, Func<TList, RepeatedField<T>> items,
        Action<TList, string, string> tokens)
        where T : class, IMessage<T>, new()
        where TGrain : IResourceGrain<T>
        where TList : class, IMessage<TList>, new()
    {
        var path = $"/controlplane.v1.{service}/";
        server.AddUnary(path + "Create", kind.MessageParser, (request, _) => runtime.GetGrain<TGrain>(KeyOf(kind, request)).CreateAsync(request));
        server.AddUnary(path + "Update", kind.MessageParser, (request, _) => runtime.GetGrain<TGrain>(KeyOf(kind, request)).UpdateAsync(request));
        server.AddUnary(path + "Delete", DeleteRequest.Parser, async (request, _) =>
        {
            await runtime.GetGrain<TGrain>(KeyOf(kind, request.Namespace, request.Name)).DeleteAsync(request.Etag).ConfigureAwait(false);
            return new DeleteResponse();
        });
        MapReads(service, kind, key => runtime.GetGrain<TGrain>(key).GetAsync(), items, tokens);
    }

    public void MapReads<T, TList>(string service, ResourceKind<T> kind, Func<string, Task<T>> get, Func<TList, RepeatedField<T>> items,
        Action<TList, string, string> tokens)
        where T : class, IMessage<T>, new()
        where TList : class, IMessage<TList>, new()
    {
        var path = $"/controlplane.v1.{service}/";
        server.AddUnary(path + "Get", GetRequest.Parser, (request, _) => get(KeyOf(kind, request.Namespace, request.Name)));
        server.AddUnary(path + "List", ListRequest.Parser, (request, _) => Task.FromResult(List(kind, request, items, tokens)));
    }

    private TList List<T, TList>(ResourceKind<T> kind, ListRequest request, Func<TList, RepeatedField<T>> items, Action<TList, string, string> tokens)
        where T : class, IMessage<T>, new()
        where TList : class, IMessage<TList>, new()
    {
        var size = request.PageSize switch
        {
            0 => DefaultPageSize,
            < 0 or > MaxPageSize => throw ControlPlaneException.Invalid("page_size", $"{request.PageSize} is outside 1..{MaxPageSize}"),
            var n => n,
        };
        string? prefix = null;
        if (request.Namespace.Length > 0)
        {
            if (!kind.Namespaced) throw ControlPlaneException.Invalid("namespace", $"{kind.Name} is cluster-scoped");
            RequireName("namespace", request.Namespace);
            prefix = request.Namespace + "/";
        }
        var page = runtime.Store.List([kind.Name], prefix, DecodePageToken(request.PageToken), size);
        var response = new TList();
        var list = items(response);
        foreach (var stored in page.Objects)
        {
            list.Add(kind.Decode(stored.Data, stored.Revision));
        }
        tokens(response, page.HasMore ? Base64Url.EncodeToString(Encoding.UTF8.GetBytes(page.Objects[^1].Key)) : string.Empty, ResumeToken.Encode(page.Heads));
        return response;
    }

    private static string? DecodePageToken(string token)
    {
        if (token.Length == 0) return null;
        try
        {
            return Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token));
        }
        catch (FormatException)
        {
            throw ControlPlaneException.Invalid("page_token", "is not a token this server issued");
        }
    }

    private static string KeyOf<T>(ResourceKind<T> kind, T resource) where T : class, IMessage<T>, new()
    {
        var meta = kind.MetaOf(resource);
        return KeyOf(kind, meta.Namespace, meta.Name, "metadata.");
    }

    private static string KeyOf(IResourceKind kind, string ns, string name, string fieldPrefix = "")
    {
        RequireName(fieldPrefix + "name", name);
        if (kind.Namespaced)
        {
            RequireName(fieldPrefix + "namespace", ns);
        }
        else if (ns.Length > 0)
        {
            throw ControlPlaneException.Invalid(fieldPrefix + "namespace", $"{kind.Name} is cluster-scoped and takes no namespace");
        }
        return ObjectKeys.Of(ns, name);
    }

    // The full naming rule of each kind is checked by its grain; here only what keeps keys well-formed.
    private static void RequireName(string field, string value)
    {
        if (value.Length == 0) throw ControlPlaneException.Invalid(field, "is required");
        if (value.Length > 253 || value.Contains('/')) throw ControlPlaneException.Invalid(field, $"'{value}' is not a valid name");
    }
}
