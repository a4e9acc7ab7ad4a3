using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace ControlPlane.Grains.Tests;

public sealed class ProtobufMessageCodecTests
{
    private static readonly IServiceProvider Services = new ServiceCollection().AddSerializer(b => b.AddProtobufMessages()).BuildServiceProvider();

    [Fact]
    public void AMessage_CrossesASiloBoundary_Intact_AsItsDeclaredAndAsAnObject()
    {
        var serializer = Services.GetRequiredService<Serializer>();
        var endpoint = new Endpoint
        {
            Metadata = new ObjectMeta { Name = "web-1", Namespace = "shop", Labels = { ["app"] = "web" } },
            Spec = new EndpointSpec { Network = "blue", Node = "node-1", Ips = { "10.1.0.9" } },
            Status = new EndpointStatus { Ips = { "10.1.0.9", "fd00::9" }, Mtu = 1450 },
        };

        Assert.Equal(endpoint, serializer.Deserialize<Endpoint>(serializer.SerializeToArray(endpoint)));
        Assert.Equal(endpoint, serializer.Deserialize<object>(serializer.SerializeToArray<object>(endpoint)));
        // Two references to one message stay one message.
        var pair = serializer.Deserialize<Endpoint[]>(serializer.SerializeToArray(new[] { endpoint, endpoint }))!;
        Assert.Same(pair[0], pair[1]);
        Assert.Null(serializer.Deserialize<Endpoint?>(serializer.SerializeToArray<Endpoint?>(null)));
    }

    [Fact]
    public void WithinASilo_AMessageIsPassedWithoutACopy()
    {
        var copier = Services.GetRequiredService<DeepCopier>();
        var service = new Service { Metadata = new ObjectMeta { Name = "web" } };

        Assert.Same(service, copier.Copy(service));
    }
}
