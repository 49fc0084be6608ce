// Azure resources for homesec-telemetry, sized for 100,000 homes (see docs/aks.md, "Sizing").
//
//   az deployment group create -g <rg> -f deploy/azure/main.bicep \
//     -p namePrefix=<prefix> aksOidcIssuerUrl=<az aks show ... --query oidcIssuerProfile.issuerUrl>
//
// Creates: an Event Hubs namespace (Standard, zone redundant, auto-inflate), the event hub (32 partitions,
// Capture to Blob), the consumer group, the alarms hub (same partition count) with the consumer's and the
// subscribers' consumer groups, Send/Listen SAS rules (only used without Workload Identity), a ZRS
// storage account with the checkpoint, rollup, dead-letter and capture containers, and a user-assigned
// identity with federated credentials for the chart's service accounts (and KEDA's) plus least-privilege
// role assignments.
// Keep the defaults in step with charts/homesec-telemetry/values.yaml (tests/chart/test_azure_sizing.py).

@description('Prefix of every resource name (letters and digits, 3-11 characters).')
@minLength(3)
@maxLength(11)
param namePrefix string

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Throughput units at steady state: 8,333 events/s / 1,000 events/s per TU = 9, rounded up to 10.')
@minValue(1)
@maxValue(40)
param throughputUnits int = 10

@description('Auto-inflate ceiling: twice the steady state, for the burst while the HPA adds pods and for catch-up.')
@minValue(1)
@maxValue(40)
param maxThroughputUnits int = 20

@description('Partitions; fixed for the life of a Standard-tier hub. 32 allows up to 32 consumer pods.')
@minValue(1)
@maxValue(32)
param partitionCount int = 32

@description('Event hub name (chart: eventHubs.name).')
param eventHubName string = 'telemetry'

@description('Consumer group of the consumer (chart: eventHubs.consumerGroup); also created on the alarms hub, where the consumer reads its own alarm events back.')
param consumerGroup string = 'rollups'

@description('Hub the consumer publishes alarm transitions to (chart: eventHubs.alarmsName). Same partition count as the telemetry hub: the homes of one telemetry partition then map to one alarms partition.')
param alarmsEventHubName string = 'alarms'

@description('Consumer group of the alarms hub for subscribers (a notification service or monitoring centre).')
param alarmsSubscriberConsumerGroup string = 'notifications'

@description('Checkpoint/ownership container (chart: blobStorage.checkpointContainer).')
param checkpointContainer string = 'checkpoints'

@description('Rollup container (chart: blobStorage.rollupContainer).')
param rollupContainer string = 'rollups'

@description('Dead-letter container of the consumer (HOMESEC_CONSUMER_DEADLETTER_CONTAINER; chart: consumer.config.DEADLETTER_CONTAINER).')
param deadletterContainer string = 'deadletters'

@description('Days Event Hubs keeps events (Standard: 1-7). Also the longest consumer outage you can recover from.')
@minValue(1)
@maxValue(7)
param retentionDays int = 7

@description('Turn on Event Hubs Capture (Avro files in the capture container): a replayable archive.')
param enableCapture bool = true

@description('OIDC issuer URL of the AKS cluster (az aks show --query oidcIssuerProfile.issuerUrl). Empty: no federated credentials.')
param aksOidcIssuerUrl string = ''

@description('Kubernetes namespace and Helm release of the chart; they name the service accounts.')
param kubernetesNamespace string = 'homesec'
param helmRelease string = 'homesec-telemetry'

@description('Also federate KEDA\'s operator (AKS KEDA add-on: kube-system/keda-operator) for the lag scaler.')
param federateKeda bool = false

var ehNamespaceName = '${namePrefix}-ehns'
var storageName = toLower('${namePrefix}st${uniqueString(resourceGroup().id)}')
var captureContainer = 'capture'
var roles = {
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975'
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
}
var serviceAccounts = concat(
  [
    'system:serviceaccount:${kubernetesNamespace}:${helmRelease}-producer'
    'system:serviceaccount:${kubernetesNamespace}:${helmRelease}-consumer'
  ],
  federateKeda ? ['system:serviceaccount:kube-system:keda-operator'] : []
)

resource ehNamespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: ehNamespaceName
  location: location
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: throughputUnits
  }
  properties: {
    isAutoInflateEnabled: true
    maximumThroughputUnits: maxThroughputUnits
    zoneRedundant: true
    minimumTlsVersion: '1.2'
    disableLocalAuth: false // set true once everything uses Workload Identity
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take(storageName, 24)
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for name in [checkpointContainer, rollupContainer, deadletterContainer, captureContainer]: {
    parent: blobService
    name: name
    properties: {
      publicAccess: 'None'
    }
  }
]

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: ehNamespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    retentionDescription: {
      cleanupPolicy: 'Delete'
      retentionTimeInHours: retentionDays * 24
    }
    captureDescription: enableCapture ? {
      enabled: true
      encoding: 'Avro'
      intervalInSeconds: 300
      sizeLimitInBytes: 314572800
      skipEmptyArchives: true
      destination: {
        name: 'EventHubArchive.AzureBlockBlob'
        properties: {
          storageAccountResourceId: storage.id
          blobContainer: captureContainer
          archiveNameFormat: '{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}'
        }
      }
    } : null
  }
  dependsOn: [containers]
}

resource hubConsumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: hub
  name: consumerGroup
}

// The alarms hub: partition key = home ID, like the telemetry hub, and the same partition count, so one
// telemetry partition's homes map to one alarms partition (the consumer reads back only that one).
resource alarmsHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: ehNamespace
  name: alarmsEventHubName
  properties: {
    partitionCount: partitionCount
    retentionDescription: {
      cleanupPolicy: 'Delete'
      retentionTimeInHours: retentionDays * 24
    }
  }
}

resource alarmsConsumerGroups 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = [
  for group in [consumerGroup, alarmsSubscriberConsumerGroup]: {
    parent: alarmsHub
    name: group
  }
]

resource sendRule 'Microsoft.EventHub/namespaces/eventhubs/authorizationRules@2024-01-01' = {
  parent: hub
  name: 'producer-send'
  properties: {
    rights: ['Send']
  }
}

resource listenRule 'Microsoft.EventHub/namespaces/eventhubs/authorizationRules@2024-01-01' = {
  parent: hub
  name: 'consumer-listen'
  properties: {
    rights: ['Listen']
  }
}

resource alarmsRule 'Microsoft.EventHub/namespaces/eventhubs/authorizationRules@2024-01-01' = {
  parent: alarmsHub
  name: 'consumer-alarms'
  properties: {
    rights: ['Send', 'Listen'] // the consumer publishes alarm events and reads them back
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-telemetry'
  location: location
}

@batchSize(1) // federated credentials on one identity must be created one at a time
resource federation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = [
  for (subject, i) in (empty(aksOidcIssuerUrl) ? [] : serviceAccounts): {
    parent: identity
    name: 'aks-${i}'
    properties: {
      issuer: aksOidcIssuerUrl
      subject: subject
      audiences: ['api://AzureADTokenExchange']
    }
  }
]

resource canSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: hub
  name: guid(hub.id, identity.id, roles.eventHubsDataSender)
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
  }
}

resource canReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: hub
  name: guid(hub.id, identity.id, roles.eventHubsDataReceiver)
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
  }
}

// The consumer publishes alarm events (Sender) and reads them back to publish each transition once (Receiver).
resource canSendAlarms 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: alarmsHub
  name: guid(alarmsHub.id, identity.id, roles.eventHubsDataSender)
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
  }
}

resource canReceiveAlarms 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: alarmsHub
  name: guid(alarmsHub.id, identity.id, roles.eventHubsDataReceiver)
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
  }
}

resource canWriteBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, identity.id, roles.storageBlobDataContributor)
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

@description('Chart value eventHubs.fullyQualifiedNamespace.')
output eventHubsFullyQualifiedNamespace string = '${ehNamespace.name}.servicebus.windows.net'
@description('Chart value blobStorage.accountUrl.')
output blobAccountUrl string = storage.properties.primaryEndpoints.blob
@description('Chart value azure.workloadIdentity.clientId.')
output workloadIdentityClientId string = identity.properties.clientId
@description('Storage account name (for connection strings without Workload Identity).')
output storageAccountName string = storage.name
output eventHubsNamespaceName string = ehNamespace.name
@description('Chart value eventHubs.alarmsName.')
output alarmsEventHubName string = alarmsHub.name
