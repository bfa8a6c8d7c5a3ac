// Runs one scenario with KafkaJS against a broker and prints what it saw as JSON.
// Usage: node scenarios.js BOOTSTRAP SCENARIO TOPIC
// The Python side (tests/compat/test_kafkajs.py) asserts on the output.
'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const {
  Kafka,
  logLevel,
  CompressionTypes,
  ConfigResourceTypes,
  AclResourceTypes,
  ResourcePatternTypes,
  AclOperationTypes,
  AclPermissionTypes,
} = require('kafkajs')

const [bootstrap, scenario, topic] = process.argv.slice(2)
const kafka = new Kafka({
  clientId: 'streamhouse-compat',
  brokers: [bootstrap],
  logLevel: logLevel.ERROR,
  retry: { retries: 5 },
})

// Resolves with the messages once `count` have arrived; rejects after `timeoutMs`.
function collect (consumer, count, timeoutMs = 30000) {
  const seen = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`got ${seen.length} of ${count} messages`)), timeoutMs)
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({
          partition,
          offset: Number(message.offset),
          key: message.key === null ? null : message.key.toString(),
          value: message.value === null ? null : message.value.toString(),
          headers: Object.fromEntries(
            Object.entries(message.headers || {}).map(([k, v]) => [k, v.toString()])
          ),
          timestamp: Number(message.timestamp),
        })
        if (seen.length === count) {
          clearTimeout(timer)
          resolve(seen)
        }
      },
    }).catch(reject)
  })
}

async function topicConfig (admin, name) {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name }],
  })
  return Object.fromEntries(
    described.resources[0].configEntries.map((entry) => [entry.configName, entry.configValue])
  )
}

async function partitionCount (admin, name) {
  const metadata = await admin.fetchTopicMetadata({ topics: [name] })
  return metadata.topics[0].partitions.length
}

const scenarios = {
  async admin () {
    const admin = kafka.admin()
    await admin.connect()
    const spec = {
      topic,
      numPartitions: 3,
      configEntries: [{ name: 'retention.ms', value: '3600000' }],
    }
    const created = await admin.createTopics({ topics: [spec], waitForLeaders: true })
    const createdAgain = await admin.createTopics({ topics: [spec] })
    const partitions = await partitionCount(admin, topic)
    const retention = (await topicConfig(admin, topic))['retention.ms']
    await admin.alterConfigs({
      resources: [{
        type: ConfigResourceTypes.TOPIC,
        name: topic,
        configEntries: [{ name: 'retention.ms', value: '7200000' }],
      }],
    })
    const altered = (await topicConfig(admin, topic))['retention.ms']
    await admin.createPartitions({ topicPartitions: [{ topic, count: 5 }] })
    const grown = await partitionCount(admin, topic)
    const cluster = await admin.describeCluster()
    const aclError = await admin
      .describeAcls({
        resourceType: AclResourceTypes.ANY,
        resourcePatternType: ResourcePatternTypes.ANY,
        operation: AclOperationTypes.ANY,
        permissionType: AclPermissionTypes.ANY,
      })
      .then(() => null, (error) => error.type)
    await admin.deleteTopics({ topics: [topic] })
    const listedAfterDelete = (await admin.listTopics()).includes(topic)
    await admin.disconnect()
    return {
      created,
      createdAgain,
      partitions,
      retention,
      altered,
      grown,
      brokers: cluster.brokers.length,
      controller: cluster.controller,
      aclError,
      listedAfterDelete,
    }
  },

  async roundtrip () {
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
    const producer = kafka.producer({ idempotent: true })
    await producer.connect()
    const sent = []
    for (let i = 0; i < 60; i++) {
      sent.push({ key: `key-${i % 6}`, value: `value-${i}`, headers: { seq: String(i) } })
    }
    sent.push({ key: 'tombstone', value: null, headers: {} })
    sent.push({ key: 'dated', value: 'old', headers: {}, timestamp: '1600000000000' })
    // Three requests, each codec KafkaJS ships without plugins.
    await producer.send({ topic, messages: sent.slice(0, 20) })
    await producer.send({ topic, compression: CompressionTypes.GZIP, messages: sent.slice(20, 40) })
    await producer.send({ topic, messages: sent.slice(40) })
    await producer.disconnect()
    const consumer = kafka.consumer({ groupId: `${topic}-group` })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const received = await collect(consumer, sent.length)
    await consumer.disconnect()
    const committed = await admin.fetchOffsets({ groupId: `${topic}-group`, topics: [topic] })
    const ends = await admin.fetchTopicOffsets(topic)
    await admin.disconnect()
    return {
      received,
      committed: committed[0].partitions.map((p) => ({ partition: p.partition, offset: Number(p.offset) })),
      ends: ends.map((p) => ({ partition: p.partition, high: Number(p.high), low: Number(p.low) })),
    }
  },

  async group () {
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true })
    const groupId = `${topic}-group`
    const members = [kafka.consumer({ groupId }), kafka.consumer({ groupId })]
    const assigned = members.map(() => new Set())
    const seen = []
    for (const [index, member] of members.entries()) {
      member.on(member.events.GROUP_JOIN, (event) => {
        assigned[index] = new Set(event.payload.memberAssignment[topic] || [])
      })
      await member.connect()
      await member.subscribe({ topic, fromBeginning: true })
    }
    const done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`got ${seen.length} of 40`)), 60000)
      for (const [index, member] of members.entries()) {
        member.run({
          eachMessage: async ({ partition, message }) => {
            seen.push({ member: index, partition, value: message.value.toString() })
            if (seen.length === 40) {
              clearTimeout(timer)
              resolve()
            }
          },
        }).catch(reject)
      }
    })
    // Produce once the members' assignments split the partitions between them (each
    // member reports its own after the rebalance), so no rebalance races the data.
    const split = () =>
      assigned.every((a) => a.size > 0) &&
      assigned[0].size + assigned[1].size === 4 &&
      [...assigned[0]].every((p) => !assigned[1].has(p))
    for (let i = 0; i < 300 && !split(); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({
      topic,
      messages: Array.from({ length: 40 }, (_, i) => ({ partition: i % 4, value: `m-${i}` })),
    })
    await producer.disconnect()
    await done
    const description = await admin.describeGroups([groupId])
    // Taken before the members leave: the last one to leave gets every partition.
    const assignments = assigned.map((a) => [...a].sort())
    for (const member of members) await member.disconnect()
    await admin.disconnect()
    return {
      assignments,
      seen,
      state: description.groups[0].state,
      memberCount: description.groups[0].members.length,
    }
  },

  async transactions () {
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
    const producer = kafka.producer({
      transactionalId: `${topic}-tx`,
      idempotent: true,
      maxInFlightRequests: 1,
    })
    await producer.connect()
    const committedTx = await producer.transaction()
    await committedTx.send({ topic, messages: [{ value: 'committed-1' }, { value: 'committed-2' }] })
    await committedTx.commit()
    const abortedTx = await producer.transaction()
    await abortedTx.send({ topic, messages: [{ value: 'aborted' }] })
    await abortedTx.abort()
    // Consume-transform-produce: the group's offset commits with the transaction.
    const lastTx = await producer.transaction()
    await lastTx.send({ topic, messages: [{ value: 'committed-3' }] })
    await lastTx.sendOffsets({
      consumerGroupId: `${topic}-source`,
      topics: [{ topic, partitions: [{ partition: 0, offset: '2' }] }],
    })
    await lastTx.commit()
    const sourceOffsets = await admin.fetchOffsets({ groupId: `${topic}-source`, topics: [topic] })
    await producer.disconnect()
    const consumer = kafka.consumer({ groupId: `${topic}-group`, readUncommitted: false })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const received = await collect(consumer, 3)
    // Anything after the third committed record would show up while we wait a little.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await consumer.disconnect()
    await admin.disconnect()
    return {
      values: received.map((m) => m.value),
      offsets: received.map((m) => m.offset),
      sourceOffset: Number(sourceOffsets[0].partitions[0].offset),
    }
  },

  async offsets () {
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({
      topic,
      messages: Array.from({ length: 10 }, (_, i) => ({ value: `r-${i}`, timestamp: String(1000 * (i + 1)) })),
    })
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, 4500)
    await producer.disconnect()
    // Also makes the admin client learn the new topic's leaders, which deleting needs.
    const beforeDelete = (await admin.fetchTopicOffsets(topic))[0]
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] })
    const afterDelete = (await admin.fetchTopicOffsets(topic))[0]
    const groupId = `${topic}-group`
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '6' }] })
    const consumer = kafka.consumer({ groupId })
    await consumer.connect()
    await consumer.subscribe({ topic })
    const fromCommitted = await collect(consumer, 4)
    await consumer.disconnect()
    await admin.resetOffsets({ groupId, topic, earliest: true })
    const reset = await admin.fetchOffsets({ groupId, topics: [topic] })
    // KafkaJS commits -2 for "earliest" and resolves any negative committed offset with
    // the subscription's fromBeginning; offset 10, committed above, would give nothing.
    const again = kafka.consumer({ groupId })
    await again.connect()
    await again.subscribe({ topic, fromBeginning: true })
    const fromEarliest = await collect(again, 7)
    await again.disconnect()
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId)
    await admin.deleteGroups([groupId])
    const groupsAfterDelete = (await admin.listGroups()).groups.map((g) => g.groupId)
    await admin.disconnect()
    return {
      byTime: Number(byTime[0].offset),
      lowBefore: Number(beforeDelete.low),
      low: Number(afterDelete.low),
      high: Number(afterDelete.high),
      fromCommitted: fromCommitted.map((m) => [m.offset, m.value]),
      reset: Number(reset[0].partitions[0].offset),
      fromEarliest: fromEarliest.map((m) => [m.offset, m.value]),
      listed: groups.includes(groupId),
      listedAfterDelete: groupsAfterDelete.includes(groupId),
    }
  },
}

scenarios[scenario]()
  .then((result) => {
    process.stdout.write(JSON.stringify(result) + '\n')
    process.exit(0)
  })
  .catch((error) => {
    process.stderr.write(`${scenario} failed: ${error.stack || error}\n`)
    process.exit(1)
  })
